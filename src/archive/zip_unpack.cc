// ExtractZip (zip.h): writes what the layout reader (zip_layout.h) planned,
// counting the bytes actually produced against the limits, and takes back
// everything it wrote when it fails.
#include "archive/zip.h"
#include "archive/zip_internal.h"
#include "archive/zip_layout.h"
#include "common/env.h"
#include "common/fd.h"
#include "common/units.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <system_error>
#include <vector>

namespace cw {
namespace fs = std::filesystem;
using zip_internal::IsCancelled;
using zip_internal::IsUnderDir;
using zip_internal::kChunk;

namespace {

struct ZipFileCloser {
  void operator()(zip_file_t* zf) const { zip_fclose(zf); }
};
using ZipFileHandle = std::unique_ptr<zip_file_t, ZipFileCloser>;

std::string LowSpaceMessage(const UnpackLimits& limits, const fs::path& dest) {
  std::string gb = FormatGb(limits.min_free_bytes);
  return "unpacking would leave less than " + gb + " GB free on " + dest.string() + " (" +
         limits.free_setting + "=" + gb + ")";
}

// Free bytes for an unprivileged writer on the file system holding `path`.
Result<std::uint64_t> FreeBytes(const fs::path& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) {
    return IoError("cannot read the free space of " + path.string() + ": " + ErrnoText(errno));
  }
  return static_cast<std::uint64_t>(vfs.f_bavail) * static_cast<std::uint64_t>(vfs.f_frsize);
}

const fs::path& FreeSpaceOf(const UnpackLimits& limits, const fs::path& dest) {
  return limits.free_space_of.empty() ? dest : limits.free_space_of;
}

// What one ExtractZip created, so that a failure can take it back.
class Unpacked {
 public:
  explicit Unpacked(fs::path dest) : dest_(std::move(dest)) {}
  void AddFile(const fs::path& path) { created_.push_back(path); }
  // Creates `dir` and its missing parents, remembering the topmost new one.
  Status MakeDirs(const fs::path& dir, const PlannedEntry& entry) {
    std::error_code ec;
    fs::path first_missing;
    for (fs::path p = dir; p != dest_ && IsUnderDir(p, dest_); p = p.parent_path()) {
      if (fs::symlink_status(p, ec).type() != fs::file_type::not_found) break;
      first_missing = p;
    }
    fs::create_directories(dir, ec);
    if (!first_missing.empty() && fs::is_directory(fs::symlink_status(first_missing))) {
      created_.push_back(first_missing);
    }
    if (!ec) return Status::Ok();
    if (ec == std::errc::file_exists || ec == std::errc::not_a_directory) {
      return InvalidInput("zip entry '" + entry.name + "' needs the folder " + dir.string() +
                          ", but a file of that name is in the way");
    }
    return IoError("cannot create the folder of zip entry '" + entry.name +
                   "': " + DescribeFileError(ec.value()));
  }
  // Removes everything recorded, newest first. Folders were new, so all
  // inside them came from this call.
  void RemoveAll() {
    std::error_code ec;
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) fs::remove_all(*it, ec);
    created_.clear();
  }

 private:
  fs::path dest_;
  std::vector<fs::path> created_;
};

// Running totals of one ExtractZip, checked after every chunk read from the
// zip and before it is written.
struct Budget {
  const UnpackLimits& limits;
  const fs::path& dest;
  std::uint64_t written = 0;
  std::uint64_t free_room = std::numeric_limits<std::uint64_t>::max();  // bytes that may be written before the reserve
  std::uint64_t next_free_check = 0;

  Status Take(std::uint64_t n, const PlannedEntry& entry) {
    if (IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
    std::uint64_t after = written + n;
    if (limits.max_bytes != 0 && after > limits.max_bytes) {
      return InvalidInput(TooBigMessage(limits) + "; entry '" + entry.name +
                          "' holds more than the zip declares, unpacking stopped");
    }
    if (limits.min_free_bytes != 0) {
      if (after > free_room) return IoError(LowSpaceMessage(limits, dest));
      // Others write to the same disk: look again every 64 MiB.
      if (after >= next_free_check) {
        CW_ASSIGN_OR_RETURN(std::uint64_t free_now, FreeBytes(FreeSpaceOf(limits, dest)));
        if (free_now < limits.min_free_bytes || free_now - limits.min_free_bytes < n) {
          return IoError(LowSpaceMessage(limits, dest));
        }
        next_free_check = after + (64u << 20);
      }
    }
    written = after;
    return Status::Ok();
  }
};

Status ExtractFile(Env& env, zip_t* za, const fs::path& zip_path, const PlannedEntry& entry,
                   const fs::path& target, Budget& budget, Unpacked& unpacked) {
  ZipFileHandle zf(zip_fopen_index(za, entry.index, 0));
  if (!zf) {
    int code = zip_error_code_zip(zip_get_error(za));
    if (code == ZIP_ER_COMPNOTSUPP || code == ZIP_ER_ENCRNOTSUPP || code == ZIP_ER_NOPASSWD) {
      return InvalidInput("zip entry '" + entry.name + "' cannot be unpacked (" + zip_strerror(za) + ")");
    }
    return InvalidInput(zip_path.string() + " is not a valid zip file (entry '" + entry.name +
                        "': " + zip_strerror(za) + ")");
  }
  // No link is followed (a link already sitting at that name must not
  // redirect the write); messages name the entry, not the host's folders.
  auto file = env.NewWritableFile(target, {false, 0600, "'" + entry.name + "'"});
  if (!file.ok()) {
    if (file.status().code() == Code::kInvalidInput) return InvalidInput(OutsideMessage(entry.name));
    return file.status();
  }
  unpacked.AddFile(target);
  std::vector<char> buffer(kChunk);
  while (true) {
    zip_int64_t n = zip_fread(zf.get(), buffer.data(), buffer.size());
    if (n < 0) {
      return InvalidInput(zip_path.string() + " is not a valid zip file (entry '" + entry.name +
                          "': " + zip_file_strerror(zf.get()) + ")");
    }
    if (n == 0) break;
    CW_RETURN_IF_ERROR(budget.Take(static_cast<std::uint64_t>(n), entry));
    CW_RETURN_IF_ERROR((*file)->Write(buffer.data(), static_cast<std::size_t>(n)));
  }
  // Set, not given to the create, so the umask cannot strip the exec bit.
  CW_RETURN_IF_ERROR((*file)->SetMode(entry.mode));
  return (*file)->Close();
}

// Writes every planned entry under `dest`, folders' modes last. On failure
// the caller removes what `unpacked` recorded.
Status WritePlan(Env& env, zip_t* za, const fs::path& zip_path, const fs::path& dest,
                 const UnpackPlan& plan, const UnpackLimits& limits, Budget& budget,
                 Unpacked& unpacked, ExtractStats& stats) {
  std::vector<const PlannedEntry*> dirs;
  for (const PlannedEntry& entry : plan.entries) {
    if (IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
    fs::path target = dest / entry.relative;
    if (entry.is_dir) {
      CW_RETURN_IF_ERROR(unpacked.MakeDirs(target, entry));
      dirs.push_back(&entry);
      continue;
    }
    CW_RETURN_IF_ERROR(unpacked.MakeDirs(target.parent_path(), entry));
    CW_RETURN_IF_ERROR(ExtractFile(env, za, zip_path, entry, target, budget, unpacked));
    ++stats.files;
  }
  // Folder modes last: they are always owner-writable anyway, but this keeps
  // the recorded bits even when a folder entry comes before its contents.
  for (const PlannedEntry* entry : dirs) {
    fs::path target = dest / entry->relative;
    if (::chmod(target.c_str(), entry->mode) != 0) {
      return IoError("cannot set permissions of '" + entry->name + "': " + DescribeFileError(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ExtractStats> ExtractZip(const fs::path& zip_path, const fs::path& dest_dir,
                                const UnpackLimits& limits, Env& env) {
  CW_ASSIGN_OR_RETURN(ZipHandle za, OpenCheckedZip(zip_path, limits));

  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return IoError("cannot create folder " + dest_dir.string() + ": " + ec.message());
  fs::path dest = fs::canonical(dest_dir, ec);
  if (ec) return IoError("cannot resolve " + dest_dir.string() + ": " + ec.message());

  // Every entry and limit is checked before anything is written, so a
  // refused zip leaves nothing behind.
  CW_ASSIGN_OR_RETURN(UnpackPlan plan, PlanUnpack(za.get(), zip_path, dest, limits));
  Budget budget{limits, dest, 0, std::numeric_limits<std::uint64_t>::max(), 0};
  if (limits.min_free_bytes != 0) {
    CW_ASSIGN_OR_RETURN(std::uint64_t free_now, FreeBytes(FreeSpaceOf(limits, dest)));
    if (free_now < limits.min_free_bytes || free_now - limits.min_free_bytes < plan.declared_bytes) {
      return IoError(LowSpaceMessage(limits, dest) + "; the zip needs " + FormatGb(plan.declared_bytes) +
                     " GB and " + FormatGb(free_now) + " GB are free");
    }
    budget.free_room = free_now - limits.min_free_bytes;
    budget.next_free_check = 64u << 20;
  }

  Unpacked unpacked(dest);
  ExtractStats stats;
  if (Status done = WritePlan(env, za.get(), zip_path, dest, plan, limits, budget, unpacked, stats);
      !done.ok()) {
    unpacked.RemoveAll();
    return done;
  }
  stats.bytes = budget.written;
  return stats;
}

}  // namespace cw
