#include "archive/zip.h"

#include "common/fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

namespace cw {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

std::string LibzipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

struct ZipCloser {
  // Extraction only reads, so discarding (not closing) never loses anything.
  void operator()(zip_t* za) const { zip_discard(za); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipCloser>;

struct ZipFileCloser {
  void operator()(zip_file_t* zf) const { zip_fclose(zf); }
};
using ZipFileHandle = std::unique_ptr<zip_file_t, ZipFileCloser>;

bool IsUnderDir(const fs::path& candidate, const fs::path& dir) {
  return std::mismatch(dir.begin(), dir.end(), candidate.begin(), candidate.end()).first == dir.end();
}

// One entry of the archive, checked and ready to unpack.
struct PlannedEntry {
  zip_uint64_t index = 0;
  std::string name;   // as stored, for messages
  fs::path relative;  // normalised, never empty for files
  bool is_dir = false;
  mode_t mode = 0;    // permission bits to apply
};

std::string OutsideMessage(const std::string& name) {
  return "zip entry '" + name + "' points outside the folder it is unpacked into";
}

// Turns an entry name into a path relative to the destination, or refuses it.
// `skip` is set for entries that must be ignored (macOS litter).
Result<fs::path> NormaliseEntryName(const std::string& raw_name, bool& skip) {
  skip = false;
  std::string name = raw_name;
  // Zips made on Windows sometimes use backslashes as separators; a
  // backslash is never meant as part of a file name there.
  std::replace(name.begin(), name.end(), '\\', '/');
  if (!name.empty() && name[0] == '/') return InvalidInput(OutsideMessage(raw_name));
  if (name.size() >= 2 && name[1] == ':' &&
      ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'))) {
    return InvalidInput(OutsideMessage(raw_name));
  }
  fs::path relative;
  std::size_t start = 0;
  bool first = true;
  while (start <= name.size()) {
    std::size_t slash = name.find('/', start);
    if (slash == std::string::npos) slash = name.size();
    std::string part = name.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidInput(OutsideMessage(raw_name));
    if (first && part == "__MACOSX") {
      skip = true;
      return fs::path();
    }
    first = false;
    relative /= part;
  }
  return relative;
}

Result<std::vector<PlannedEntry>> PlanEntries(zip_t* za, const fs::path& zip_path,
                                              const fs::path& dest_canonical) {
  std::vector<PlannedEntry> plan;
  zip_int64_t count = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    auto index = static_cast<zip_uint64_t>(i);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, index, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) {
      return InvalidInput(zip_path.string() + " is not a valid zip file (" + zip_strerror(za) + ")");
    }
    std::string raw_name = st.name;
    bool skip = false;
    CW_ASSIGN_OR_RETURN(fs::path relative, NormaliseEntryName(raw_name, skip));
    if (skip) continue;

    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    if (zip_file_get_external_attributes(za, index, 0, &opsys, &attributes) != 0) {
      return InvalidInput(zip_path.string() + " is not a valid zip file (" + zip_strerror(za) + ")");
    }
    mode_t unix_mode = opsys == ZIP_OPSYS_UNIX ? static_cast<mode_t>(attributes >> 16) : 0;
    if (S_ISLNK(unix_mode)) {
      return InvalidInput("zip entry '" + raw_name +
                          "' is a symbolic link; links are not unpacked, put the file itself in the zip");
    }
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
      return InvalidInput("zip entry '" + raw_name +
                          "' is encrypted; the zip must be made without a password");
    }

    PlannedEntry entry;
    entry.index = index;
    entry.name = raw_name;
    entry.relative = relative;
    entry.is_dir = (!raw_name.empty() && (raw_name.back() == '/' || raw_name.back() == '\\')) ||
                   S_ISDIR(unix_mode);
    if (relative.empty()) {
      if (entry.is_dir) continue;  // "./" names the destination itself
      return InvalidInput("zip entry '" + raw_name + "' has no file name");
    }
    // Only the permission bits: set-uid and friends from a participant's zip
    // have no business on the host.
    mode_t perms = unix_mode & 0777;
    if (perms == 0) perms = entry.is_dir ? 0755 : 0644;
    // The worker must always be able to read, replace and clean up what it unpacked.
    entry.mode = perms | (entry.is_dir ? 0700 : 0600);

    // The name itself is clean by now, but a link already inside dest_dir
    // could still carry it elsewhere.
    std::error_code ec;
    fs::path resolved = fs::weakly_canonical(dest_canonical / relative, ec);
    if (ec) return IoError("cannot resolve " + (dest_canonical / relative).string() + ": " + ec.message());
    if (!IsUnderDir(resolved, dest_canonical)) return InvalidInput(OutsideMessage(raw_name));
    plan.push_back(std::move(entry));
  }
  return plan;
}

Status MakeDirs(const fs::path& dir, const PlannedEntry& entry) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec) return Status::Ok();
  if (ec == std::errc::file_exists || ec == std::errc::not_a_directory) {
    return InvalidInput("zip entry '" + entry.name + "' needs the folder " + dir.string() +
                        ", but a file of that name is in the way");
  }
  return IoError("cannot create folder " + dir.string() + ": " + ec.message());
}

Status ExtractFile(zip_t* za, const fs::path& zip_path, const PlannedEntry& entry,
                   const fs::path& target, std::uint64_t& bytes) {
  ZipFileHandle zf(zip_fopen_index(za, entry.index, 0));
  if (!zf) {
    int code = zip_error_code_zip(zip_get_error(za));
    if (code == ZIP_ER_COMPNOTSUPP || code == ZIP_ER_ENCRNOTSUPP || code == ZIP_ER_NOPASSWD) {
      return InvalidInput("zip entry '" + entry.name + "' cannot be unpacked (" + zip_strerror(za) + ")");
    }
    return InvalidInput(zip_path.string() + " is not a valid zip file (entry '" + entry.name +
                        "': " + zip_strerror(za) + ")");
  }
  // O_NOFOLLOW: a link already sitting at that name must not redirect the write.
  Fd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ELOOP) return InvalidInput(OutsideMessage(entry.name));
    return IoError("cannot create " + target.string() + ": " + ErrnoText(err));
  }
  std::vector<char> buffer(kChunk);
  while (true) {
    zip_int64_t n = zip_fread(zf.get(), buffer.data(), buffer.size());
    if (n < 0) {
      return InvalidInput(zip_path.string() + " is not a valid zip file (entry '" + entry.name +
                          "': " + zip_file_strerror(zf.get()) + ")");
    }
    if (n == 0) break;
    CW_RETURN_IF_ERROR(WriteAll(fd.get(), buffer.data(), static_cast<std::size_t>(n), target));
    bytes += static_cast<std::uint64_t>(n);
  }
  // fchmod, not the open() mode, so the umask cannot strip the exec bit.
  if (::fchmod(fd.get(), entry.mode) != 0) {
    return IoError("cannot set permissions of " + target.string() + ": " + ErrnoText(errno));
  }
  if (int err = fd.Close(); err != 0) {
    return IoError("cannot write " + target.string() + ": " + ErrnoText(err));
  }
  return Status::Ok();
}

std::string RandomSuffix() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::uint64_t value = engine();
  for (int i = 0; i < 12; ++i) {
    out.push_back(kHex[value & 0xf]);
    value >>= 4;
  }
  return out;
}

struct SourceItem {
  fs::path path;
  std::string name;  // '/'-separated, relative to the source folder
  bool is_dir = false;
  mode_t mode = 0;
};

Status CollectItems(const fs::path& dir, const std::string& prefix, const fs::path& skip_path,
                    std::vector<SourceItem>& items) {
  std::error_code ec;
  std::vector<fs::directory_entry> children;
  fs::directory_iterator it(dir, ec);
  if (ec) return IoError("cannot list " + dir.string() + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    children.push_back(*it);
  }
  if (ec) return IoError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(children.begin(), children.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) {
              return a.path().filename().native() < b.path().filename().native();
            });
  for (const fs::directory_entry& child : children) {
    struct stat st;
    // lstat: a link is judged as a link and never followed.
    if (::lstat(child.path().c_str(), &st) != 0) {
      return IoError("cannot read " + child.path().string() + ": " + ErrnoText(errno));
    }
    std::string name = prefix + child.path().filename().string();
    if (S_ISLNK(st.st_mode)) {
      spdlog::warn("not zipping {}: symbolic links are skipped", child.path().string());
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      items.push_back({child.path(), name + "/", true, st.st_mode & 07777});
      CW_RETURN_IF_ERROR(CollectItems(child.path(), name + "/", skip_path, items));
    } else if (S_ISREG(st.st_mode)) {
      if (!skip_path.empty() && child.path() == skip_path) continue;
      items.push_back({child.path(), name, false, st.st_mode & 07777});
    } else {
      // Reading a FIFO would block forever; devices and sockets have no content to keep.
      spdlog::warn("not zipping {}: not a regular file or folder", child.path().string());
    }
  }
  return Status::Ok();
}

// libzip writes nothing at all for an archive without entries, yet an empty
// output folder must still give a valid zip.
Status WriteEmptyZip(const fs::path& path) {
  static constexpr std::array<char, 22> kEndRecord = {'P', 'K', 5, 6};
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return IoError("cannot create " + path.string() + ": " + ErrnoText(errno));
  CW_RETURN_IF_ERROR(WriteAll(fd.get(), kEndRecord.data(), kEndRecord.size(), path));
  if (int err = fd.Close(); err != 0) return IoError("cannot write " + path.string() + ": " + ErrnoText(err));
  return Status::Ok();
}

Status WriteZip(const std::vector<SourceItem>& items, const fs::path& out) {
  if (items.empty()) return WriteEmptyZip(out);
  int error_code = 0;
  zip_t* za = zip_open(out.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error_code);
  if (za == nullptr) {
    return IoError("cannot create " + out.string() + ": " + LibzipErrorText(error_code));
  }
  auto fail = [&](const std::string& what) {
    Status status = IoError(what + ": " + zip_strerror(za));
    zip_discard(za);
    return status;
  };
  for (const SourceItem& item : items) {
    zip_int64_t index;
    if (item.is_dir) {
      index = zip_dir_add(za, item.name.c_str(), ZIP_FL_ENC_GUESS);
      if (index < 0) return fail("cannot add folder " + item.path.string() + " to the zip");
    } else {
      // The file is only opened and read, in chunks, at zip_close.
      zip_source_t* source = zip_source_file(za, item.path.c_str(), 0, -1);
      if (source == nullptr) return fail("cannot add " + item.path.string() + " to the zip");
      index = zip_file_add(za, item.name.c_str(), source, ZIP_FL_ENC_GUESS);
      if (index < 0) {
        zip_source_free(source);
        return fail("cannot add " + item.path.string() + " to the zip");
      }
    }
    zip_uint32_t attributes =
        static_cast<zip_uint32_t>((item.is_dir ? S_IFDIR : S_IFREG) | item.mode) << 16;
    if (zip_file_set_external_attributes(za, static_cast<zip_uint64_t>(index), 0, ZIP_OPSYS_UNIX,
                                         attributes) != 0) {
      return fail("cannot record permissions of " + item.path.string());
    }
  }
  if (zip_close(za) != 0) return fail("cannot write " + out.string());
  return Status::Ok();
}

}  // namespace

Result<ExtractStats> ExtractZip(const fs::path& zip_path, const fs::path& dest_dir) {
  std::error_code ec;
  auto status = fs::status(zip_path, ec);
  if (!fs::exists(status)) return NotFound("no file at " + zip_path.string());
  if (!fs::is_regular_file(status)) return InvalidInput(zip_path.string() + " is not a valid zip file (not a file)");
  // libzip treats an empty file as an empty archive; nobody uploads that on purpose.
  if (fs::file_size(zip_path, ec) == 0 && !ec) {
    return InvalidInput(zip_path.string() + " is not a valid zip file (the file is empty)");
  }

  int error_code = 0;
  ZipHandle za(zip_open(zip_path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error_code));
  if (!za && error_code == ZIP_ER_INCONS) {
    // Some zip writers leave harmless mismatches between local and central
    // headers that the strict check rejects; the CRC of every entry is still
    // verified while reading, so corrupt data is caught there.
    spdlog::info("{} failed libzip's consistency check; reading it anyway", zip_path.string());
    za.reset(zip_open(zip_path.c_str(), ZIP_RDONLY, &error_code));
  }
  if (!za) {
    if (error_code == ZIP_ER_NOENT) return NotFound("no file at " + zip_path.string());
    if (error_code == ZIP_ER_OPEN || error_code == ZIP_ER_READ) {
      return IoError("cannot read " + zip_path.string() + ": " + LibzipErrorText(error_code));
    }
    return InvalidInput(zip_path.string() + " is not a valid zip file (" + LibzipErrorText(error_code) + ")");
  }

  fs::create_directories(dest_dir, ec);
  if (ec) return IoError("cannot create folder " + dest_dir.string() + ": " + ec.message());
  fs::path dest = fs::canonical(dest_dir, ec);
  if (ec) return IoError("cannot resolve " + dest_dir.string() + ": " + ec.message());

  // Every entry is checked before anything is written, so a refused zip leaves
  // nothing behind.
  CW_ASSIGN_OR_RETURN(std::vector<PlannedEntry> plan, PlanEntries(za.get(), zip_path, dest));

  ExtractStats stats;
  std::vector<const PlannedEntry*> dirs;
  for (const PlannedEntry& entry : plan) {
    fs::path target = dest / entry.relative;
    if (entry.is_dir) {
      CW_RETURN_IF_ERROR(MakeDirs(target, entry));
      dirs.push_back(&entry);
      continue;
    }
    CW_RETURN_IF_ERROR(MakeDirs(target.parent_path(), entry));
    CW_RETURN_IF_ERROR(ExtractFile(za.get(), zip_path, entry, target, stats.bytes));
    ++stats.files;
  }
  // Folder modes last: they are always owner-writable anyway, but this keeps
  // the recorded bits even when a folder entry comes before its contents.
  for (const PlannedEntry* entry : dirs) {
    fs::path target = dest / entry->relative;
    if (::chmod(target.c_str(), entry->mode) != 0) {
      return IoError("cannot set permissions of " + target.string() + ": " + ErrnoText(errno));
    }
  }
  return stats;
}

Status CreateZip(const fs::path& src_dir, const fs::path& zip_path) {
  std::error_code ec;
  if (!fs::is_directory(src_dir, ec)) return NotFound("no folder at " + src_dir.string());
  // The zip may be written inside the folder being zipped; an older copy of
  // it must not end up inside the new one.
  fs::path skip_path = fs::weakly_canonical(zip_path, ec);
  if (ec) skip_path.clear();
  fs::path src = fs::canonical(src_dir, ec);
  if (ec) return IoError("cannot resolve " + src_dir.string() + ": " + ec.message());

  std::vector<SourceItem> items;
  CW_RETURN_IF_ERROR(CollectItems(src, "", skip_path, items));

  if (!zip_path.parent_path().empty()) {
    fs::create_directories(zip_path.parent_path(), ec);
    if (ec) return IoError("cannot create folder " + zip_path.parent_path().string() + ": " + ec.message());
  }
  fs::path tmp = zip_path;
  tmp += ".part-" + RandomSuffix();
  Status status = WriteZip(items, tmp);
  if (status.ok()) {
    fs::rename(tmp, zip_path, ec);
    if (ec) status = IoError("cannot rename " + tmp.string() + " to " + zip_path.string() + ": " + ec.message());
  }
  if (!status.ok()) fs::remove(tmp, ec);
  return status;
}

bool LooksLikeZip(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4];
  if (!in.read(magic, sizeof magic)) return false;
  return magic[0] == 'P' && magic[1] == 'K' &&
         ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6));
}

}  // namespace cw
