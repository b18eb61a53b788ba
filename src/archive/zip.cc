#include "archive/zip.h"

#include "common/fd.h"
#include "common/units.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
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

bool IsCancelled(const std::function<bool()>& cancelled) { return cancelled && cancelled(); }


std::string TooBigMessage(const UnpackLimits& limits) {
  std::string gb = FormatGb(limits.max_bytes);
  return "the zip unpacks to more than " + gb + " GB (" + limits.bytes_setting + "=" + gb + ")";
}

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

// ---- Our own reading of the zip's layout --------------------------------
//
// libzip 1.7.3 does not notice central-directory entries that share bytes of
// the file (David Fifield's "non-recursive zip bomb": thousands of entries
// pointing into one deflate stream). So the central directory is walked here,
// with bounded reads and every size checked against the file, and each
// entry's span in the file (local header, name, extra, data, descriptor) must
// not overlap any other entry's, nor the central directory itself.

std::uint16_t Le16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t Le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint64_t Le64(const unsigned char* p) {
  return static_cast<std::uint64_t>(Le32(p)) | (static_cast<std::uint64_t>(Le32(p + 4)) << 32);
}
bool HasSig(const unsigned char* p, unsigned char a, unsigned char b) {
  return p[0] == 'P' && p[1] == 'K' && p[2] == a && p[3] == b;
}

// One central-directory entry, as far as the layout check needs it.
struct CdEntry {
  std::uint64_t start = 0;  // local header offset
  std::uint64_t end = 0;    // one past the entry's last byte (data descriptor included)
  std::uint64_t comp_size = 0;
  std::uint64_t name_hash = 0;  // FNV-1a of the raw name, to match libzip's entry
  std::uint64_t index = 0;
};

struct Layout {
  std::uint64_t entries = 0;
  std::uint64_t cd_start = 0;  // the central directory, which no entry may overlap either
  std::uint64_t cd_end = 0;
  std::vector<CdEntry> spans;
};

std::uint64_t NameHash(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

class LayoutReader {
 public:
  LayoutReader(int fd, std::uint64_t size, const fs::path& path) : fd_(fd), size_(size), path_(path) {}

  Status Invalid(const std::string& why) const {
    return InvalidInput(path_.string() + " is not a valid zip file (" + why + ")");
  }

  // Exactly `n` bytes at `offset`, or InvalidInput when the file is shorter.
  Status ReadAt(std::uint64_t offset, unsigned char* out, std::size_t n) const {
    if (offset > size_ || n > size_ - offset) return Invalid("it ends early");
    std::size_t done = 0;
    while (done < n) {
      ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return IoError("cannot read " + path_.string() + ": " + ErrnoText(errno));
      }
      if (got == 0) return Invalid("it ends early");
      done += static_cast<std::size_t>(got);
    }
    return Status::Ok();
  }

  std::uint64_t size() const { return size_; }

 private:
  int fd_;
  std::uint64_t size_;
  const fs::path& path_;
};

// a + b, or false when it passes `limit` (or overflows).
bool AddWithin(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
  if (b > limit || a > limit - b) return false;
  out = a + b;
  return true;
}

Result<Layout> ReadLayout(const fs::path& zip_path, const UnpackLimits& limits) {
  Fd fd(::open(zip_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("cannot read " + zip_path.string() + ": " + ErrnoText(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IoError("cannot read " + zip_path.string() + ": " + ErrnoText(errno));
  LayoutReader in(fd.get(), static_cast<std::uint64_t>(st.st_size), zip_path);
  const std::uint64_t file_size = in.size();

  // End of central directory record: 22 bytes plus a comment of up to 64 KiB,
  // at the very end. Prefer the record whose comment ends exactly at the end
  // of the file; otherwise the last one that fits.
  constexpr std::size_t kEocd = 22;
  if (file_size < kEocd) return in.Invalid("too short for a zip");
  std::size_t tail_len = static_cast<std::size_t>(std::min<std::uint64_t>(file_size, kEocd + 0xffff));
  std::vector<unsigned char> tail(tail_len);
  std::uint64_t tail_start = file_size - tail_len;
  CW_RETURN_IF_ERROR(in.ReadAt(tail_start, tail.data(), tail_len));
  std::size_t found = tail_len;  // none
  for (std::size_t i = tail_len - kEocd + 1; i-- > 0;) {
    if (!HasSig(&tail[i], 5, 6)) continue;
    std::size_t comment = Le16(&tail[i + 20]);
    if (i + kEocd + comment == tail_len) {
      found = i;
      break;
    }
    if (found == tail_len && i + kEocd + comment <= tail_len) found = i;
  }
  if (found == tail_len) return in.Invalid("no end of central directory record");
  const unsigned char* eocd = &tail[found];
  std::uint64_t eocd_pos = tail_start + found;
  std::uint64_t count = Le16(eocd + 10);
  std::uint64_t cd_size = Le32(eocd + 12);
  std::uint64_t cd_offset = Le32(eocd + 16);
  std::uint64_t cd_limit = eocd_pos;  // the central directory ends before this

  // ZIP64: a locator right before the record points to the ZIP64 end record.
  if (eocd_pos >= 20) {
    unsigned char loc[20];
    CW_RETURN_IF_ERROR(in.ReadAt(eocd_pos - 20, loc, sizeof loc));
    if (HasSig(loc, 6, 7)) {
      std::uint64_t rec_pos = Le64(loc + 8);
      unsigned char rec[56];
      if (rec_pos > eocd_pos - 20 || eocd_pos - 20 - rec_pos < sizeof rec) {
        return in.Invalid("bad ZIP64 end of central directory locator");
      }
      CW_RETURN_IF_ERROR(in.ReadAt(rec_pos, rec, sizeof rec));
      if (!HasSig(rec, 6, 6)) return in.Invalid("bad ZIP64 end of central directory record");
      count = Le64(rec + 32);
      cd_size = Le64(rec + 40);
      cd_offset = Le64(rec + 48);
      cd_limit = rec_pos;
    }
  }
  std::uint64_t cd_end = 0;
  if (!AddWithin(cd_offset, cd_size, cd_limit, cd_end)) {
    return in.Invalid("the central directory lies outside the file");
  }
  if (limits.max_entries != 0 && count > limits.max_entries) {
    return InvalidInput("the zip has " + std::to_string(count) + " entries, more than the " +
                        std::to_string(limits.max_entries) + " allowed");
  }
  constexpr std::size_t kCdHeader = 46;
  if (count > cd_size / kCdHeader) return in.Invalid("the central directory is too short for its entries");

  Layout layout;
  layout.entries = count;
  layout.cd_start = cd_offset;
  layout.cd_end = cd_end;
  // Grown as headers are actually read, not sized by what the record claims.
  layout.spans.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, 1u << 16)));
  std::vector<unsigned char> var;  // name + extra of one header, at most 128 KiB
  std::uint64_t pos = cd_offset;
  for (std::uint64_t i = 0; i < count; ++i) {
    if ((i & 1023) == 0 && IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
    unsigned char h[kCdHeader];
    if (cd_end - pos < kCdHeader) return in.Invalid("the central directory is too short for its entries");
    CW_RETURN_IF_ERROR(in.ReadAt(pos, h, kCdHeader));
    if (!HasSig(h, 1, 2)) return in.Invalid("bad central directory header");
    std::uint16_t flags = Le16(h + 8);
    std::uint64_t comp_size = Le32(h + 20);
    std::uint64_t uncomp_size = Le32(h + 24);
    std::size_t name_len = Le16(h + 28);
    std::size_t extra_len = Le16(h + 30);
    std::size_t comment_len = Le16(h + 32);
    std::uint64_t offset = Le32(h + 42);
    std::uint64_t header_len = kCdHeader + name_len + extra_len + comment_len;
    if (cd_end - pos < header_len) return in.Invalid("a central directory header runs past its end");
    var.resize(name_len + extra_len);
    CW_RETURN_IF_ERROR(in.ReadAt(pos + kCdHeader, var.data(), var.size()));
    pos += header_len;

    // ZIP64 extended information: 64-bit values for the fields set to all ones, in this order.
    if (uncomp_size == 0xffffffff || comp_size == 0xffffffff || offset == 0xffffffff) {
      const unsigned char* extra = var.data() + name_len;
      std::size_t at = 0;
      bool seen = false;
      while (!seen && extra_len - at >= 4) {
        std::uint16_t id = Le16(extra + at);
        std::size_t len = Le16(extra + at + 2);
        at += 4;
        if (len > extra_len - at) break;
        if (id == 0x0001) {
          seen = true;
          std::size_t field = at;
          std::size_t field_end = at + len;
          for (std::uint64_t* value : {&uncomp_size, &comp_size, &offset}) {
            if (*value != 0xffffffff) continue;
            if (field_end - field < 8) return in.Invalid("bad ZIP64 extra field");
            *value = Le64(extra + field);
            field += 8;
          }
        }
        at += len;
      }
      if (!seen) return in.Invalid("a ZIP64 entry without its extra field");
    }

    // The entry's span: its local header (whose own name and extra lengths
    // count), its data and, with flag bit 3, the data descriptor after it.
    unsigned char local[30];
    CW_RETURN_IF_ERROR(in.ReadAt(offset, local, sizeof local));
    if (!HasSig(local, 3, 4)) return in.Invalid("bad local header");
    std::uint64_t end = 0;
    if (!AddWithin(offset, 30 + static_cast<std::uint64_t>(Le16(local + 26)) + Le16(local + 28), file_size, end) ||
        !AddWithin(end, comp_size, file_size, end)) {
      return in.Invalid("an entry runs past the end of the file");
    }
    if (flags & 0x0008) {
      // crc + sizes (4 + 4 + 4, or 4 + 8 + 8 for ZIP64), optionally signed.
      // Counted at their smallest: writers disagree on when the sizes take 8
      // bytes, and a few uncounted bytes cannot hide a zip bomb.
      std::uint64_t desc = 12;
      unsigned char sig[4];
      if (file_size - end >= 4) {
        CW_RETURN_IF_ERROR(in.ReadAt(end, sig, sizeof sig));
        if (HasSig(sig, 7, 8)) desc += 4;
      }
      if (!AddWithin(end, desc, file_size, end)) return in.Invalid("an entry runs past the end of the file");
    }
    CdEntry span;
    span.start = offset;
    span.end = end;
    span.comp_size = comp_size;
    span.name_hash = NameHash(var.data(), name_len);
    span.index = i;
    layout.spans.push_back(span);
  }
  return layout;
}

// Entries of the libzip view `za` must be those of `layout` (same count, same
// raw names and compressed sizes, in order), and no two may share bytes.
Status CheckLayout(zip_t* za, const fs::path& zip_path, Layout layout) {
  auto invalid = [&](const std::string& why) {
    return InvalidInput(zip_path.string() + " is not a valid zip file (" + why + ")");
  };
  zip_int64_t count = zip_get_num_entries(za, 0);
  if (count < 0 || static_cast<std::uint64_t>(count) != layout.entries ||
      layout.spans.size() != layout.entries) {
    return invalid("its central directory cannot be read consistently");
  }
  for (const CdEntry& span : layout.spans) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, span.index, ZIP_FL_ENC_RAW, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_COMP_SIZE) || st.comp_size != span.comp_size ||
        NameHash(reinterpret_cast<const unsigned char*>(st.name), std::strlen(st.name)) != span.name_hash) {
      return invalid("its central directory cannot be read consistently");
    }
  }
  auto name_of = [&](const CdEntry& span) {
    const char* name = zip_get_name(za, span.index, ZIP_FL_ENC_RAW);
    return std::string(name != nullptr ? name : "?");
  };
  std::sort(layout.spans.begin(), layout.spans.end(),
            [](const CdEntry& a, const CdEntry& b) { return a.start < b.start; });
  const CdEntry* furthest = nullptr;
  for (const CdEntry& span : layout.spans) {
    if (furthest != nullptr && span.start < furthest->end) {
      return InvalidInput("the zip's entries overlap; it is not a valid archive (entries '" +
                          name_of(*furthest) + "' and '" + name_of(span) +
                          "' share bytes, as in a zip bomb)");
    }
    if (span.start < layout.cd_end && layout.cd_start < span.end) {
      return InvalidInput("the zip's entries overlap; it is not a valid archive (entry '" +
                          name_of(span) + "' overlaps the central directory)");
    }
    if (furthest == nullptr || span.end > furthest->end) furthest = &span;
  }
  return Status::Ok();
}

// One entry of the archive, checked and ready to unpack.
struct PlannedEntry {
  zip_uint64_t index = 0;
  std::string name;   // as stored, for messages
  fs::path relative;  // normalised, never empty for files
  bool is_dir = false;
  mode_t mode = 0;    // permission bits to apply
  std::uint64_t size = 0;  // uncompressed size, as the zip declares it
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
                                              const fs::path& dest_canonical,
                                              const UnpackLimits& limits) {
  std::vector<PlannedEntry> plan;
  zip_int64_t count = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    if ((i & 1023) == 0 && IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
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
    entry.size = (st.valid & ZIP_STAT_SIZE) ? st.size : 0;
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
    return IoError("cannot create folder " + dir.string() + ": " + ec.message());
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
        CW_ASSIGN_OR_RETURN(std::uint64_t free_now, FreeBytes(dest));
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

Status ExtractFile(zip_t* za, const fs::path& zip_path, const PlannedEntry& entry,
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
  // O_NOFOLLOW: a link already sitting at that name must not redirect the write.
  Fd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ELOOP) return InvalidInput(OutsideMessage(entry.name));
    return IoError("cannot create " + target.string() + ": " + ErrnoText(err));
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
    CW_RETURN_IF_ERROR(WriteAll(fd.get(), buffer.data(), static_cast<std::size_t>(n), target));
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
  mode_t mode = 0;  // permission bits only
  std::uint64_t size = 0;  // as listed; the file may change before it is read
  time_t mtime = 0;
};

Status CollectItems(const fs::path& dir, const std::string& prefix, const fs::path& skip_path,
                    const std::function<bool()>& cancelled, std::vector<SourceItem>& items) {
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
    if (IsCancelled(cancelled)) return Cancelled("zipping was cancelled");
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
    // Only the permission bits: set-uid, set-gid and sticky bits set by a
    // participant's program must not travel on.
    mode_t perms = st.st_mode & 0777;
    if (S_ISDIR(st.st_mode)) {
      items.push_back({child.path(), name + "/", true, perms, 0, st.st_mtime});
      CW_RETURN_IF_ERROR(CollectItems(child.path(), name + "/", skip_path, cancelled, items));
    } else if (S_ISREG(st.st_mode)) {
      if (!skip_path.empty() && child.path() == skip_path) continue;
      items.push_back({child.path(), name, false, perms, static_cast<std::uint64_t>(st.st_size), st.st_mtime});
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

// Opens `name` ('/'-separated, relative to `root`) for reading one path
// component at a time, following no link anywhere on the way (O_NOFOLLOW
// alone only covers the last component) and never blocking on a FIFO.
// -1 with errno set when it cannot.
int OpenWithoutLinks(const fs::path& root, const std::string& name) {
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return -1;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = name.find('/', start);
    bool last = slash == std::string::npos;
    std::string part = name.substr(start, last ? std::string::npos : slash - start);
    int flags = last ? (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                     : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int next = ::openat(dir, part.c_str(), flags);
    int err = errno;
    ::close(dir);
    if (next < 0) {
      errno = err;
      return -1;
    }
    if (last) return next;
    dir = next;
    start = slash + 1;
  }
}

// Shared by the file sources of one CreateZip: why writing stopped.
struct WriteState {
  const fs::path& root;  // the folder being zipped, resolved
  const std::function<bool()>& cancelled;
  bool was_cancelled = false;
  std::string failure;  // first file problem, for the message
};

// A libzip source for one file of the folder being zipped. Nothing is opened
// until libzip asks (at zip_close, one file after the other), and then without
// following links or blocking, and only a regular file is read, in chunks.
struct FileSource {
  const SourceItem* item = nullptr;
  WriteState* state = nullptr;
  int fd = -1;
  zip_error_t error;

  zip_int64_t Fail(int zip_code, int sys_errno, std::string why) {
    if (state->failure.empty()) state->failure = std::move(why);
    zip_error_set(&error, zip_code, sys_errno);
    return -1;
  }
  zip_int64_t Cancel() {
    state->was_cancelled = true;
    zip_error_set(&error, ZIP_ER_CANCELLED, 0);
    return -1;
  }
  void CloseFd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  zip_int64_t Handle(void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    switch (cmd) {
      case ZIP_SOURCE_OPEN: {
        if (IsCancelled(state->cancelled)) return Cancel();
        CloseFd();
        const std::string path = item->path.string();
        fd = OpenWithoutLinks(state->root, item->name);
        if (fd < 0) {
          int err = errno;
          if (err == ELOOP || err == ENOTDIR) {
            return Fail(ZIP_ER_OPEN, err, "cannot zip " + path + ": it or a folder on its way was replaced by "
                                          "a symbolic link or another kind of file while zipping");
          }
          return Fail(ZIP_ER_OPEN, err, "cannot read " + path + ": " + ErrnoText(err));
        }
        struct stat st;
        if (::fstat(fd, &st) != 0) {
          int err = errno;
          CloseFd();
          return Fail(ZIP_ER_OPEN, err, "cannot read " + path + ": " + ErrnoText(err));
        }
        if (!S_ISREG(st.st_mode)) {
          CloseFd();
          return Fail(ZIP_ER_OPEN, 0, "cannot zip " + path + ": it stopped being a regular file while zipping");
        }
        return 0;
      }
      case ZIP_SOURCE_READ: {
        if (IsCancelled(state->cancelled)) return Cancel();
        std::size_t want = static_cast<std::size_t>(std::min<zip_uint64_t>(len, kChunk));
        while (true) {
          ssize_t n = ::read(fd, data, want);
          if (n >= 0) return n;
          if (errno == EINTR) continue;
          int err = errno;
          return Fail(ZIP_ER_READ, err, "cannot read " + item->path.string() + ": " + ErrnoText(err));
        }
      }
      case ZIP_SOURCE_CLOSE:
        CloseFd();
        return 0;
      case ZIP_SOURCE_STAT: {
        zip_stat_t* st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &error);
        if (st == nullptr) return -1;
        zip_stat_init(st);
        st->mtime = item->mtime;
        // The size as listed: libzip only uses it to choose between plain and
        // ZIP64 headers, and records what it actually read.
        st->size = item->size;
        st->valid |= ZIP_STAT_MTIME | ZIP_STAT_SIZE;
        return sizeof(zip_stat_t);
      }
      case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&error, data, len);
      case ZIP_SOURCE_FREE:
        CloseFd();
        zip_error_fini(&error);
        delete this;
        return 0;
      case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
      default:
        zip_error_set(&error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
  }

  static zip_int64_t Callback(void* self, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    return static_cast<FileSource*>(self)->Handle(data, len, cmd);
  }
};

// Whether deflating the file would be wasted work: its first 64 KiB (read
// through the same link-free open as the zip's own reads) shrink by less
// than 3 % at zlib's fastest level. Model weights, images, archives and
// random data then cost a copy instead of a deflate (several times faster);
// text still shrinks as before. Small files are always deflated.
// libzip deflates at level 9 unless told. Measured on 64 MiB of CSV-like
// text (bench/zip_bench): level 9 took 19.8 s of CPU for a 19.0 MiB zip,
// level 6 (zlib's default, what Python's zipfile and so the Python worker
// use) 4.6 s for 19.6 MiB, level 1 1.0 s for 23.7 MiB. A worker's CPU is
// the scarce thing; a fifth more bytes to store is not.
constexpr zip_uint32_t kDeflateLevel = 1;

bool StoreRatherThanDeflate(const fs::path& root, const SourceItem& item) {
  constexpr std::size_t kSample = 64 * 1024;
  if (item.size < 16 * 1024) return false;
  Fd fd(OpenWithoutLinks(root, item.name));
  if (fd.get() < 0) return false;  // the real read reports it
  std::vector<unsigned char> in(kSample);
  std::size_t got = 0;
  while (got < in.size()) {
    ssize_t n = ::read(fd.get(), in.data() + got, in.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < 16 * 1024) return false;
  uLongf out_size = compressBound(static_cast<uLong>(got));
  std::vector<unsigned char> out(out_size);
  if (compress2(out.data(), &out_size, in.data(), static_cast<uLong>(got), 1) != Z_OK) return false;
  return out_size * 100 > got * 97;
}

Status WriteZip(const fs::path& root, const std::vector<SourceItem>& items, const fs::path& out,
                const std::function<bool()>& cancelled) {
  if (IsCancelled(cancelled)) return Cancelled("zipping was cancelled");
  if (items.empty()) return WriteEmptyZip(out);
  int error_code = 0;
  zip_t* za = zip_open(out.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error_code);
  if (za == nullptr) {
    return IoError("cannot create " + out.string() + ": " + LibzipErrorText(error_code));
  }
  WriteState state{root, cancelled, false, {}};
  auto fail = [&](const std::string& what) {
    Status status = state.was_cancelled     ? Cancelled("zipping was cancelled")
                    : !state.failure.empty() ? IoError(state.failure)
                                             : IoError(what + ": " + zip_strerror(za));
    zip_discard(za);
    return status;
  };
  for (const SourceItem& item : items) {
    zip_int64_t index;
    if (item.is_dir) {
      index = zip_dir_add(za, item.name.c_str(), ZIP_FL_ENC_GUESS);
      if (index < 0) return fail("cannot add folder " + item.path.string() + " to the zip");
    } else {
      auto* ctx = new FileSource;
      ctx->item = &item;
      ctx->state = &state;
      zip_error_init(&ctx->error);
      zip_source_t* source = zip_source_function(za, &FileSource::Callback, ctx);
      if (source == nullptr) {
        zip_error_fini(&ctx->error);
        delete ctx;
        return fail("cannot add " + item.path.string() + " to the zip");
      }
      index = zip_file_add(za, item.name.c_str(), source, ZIP_FL_ENC_GUESS);
      if (index < 0) {
        zip_source_free(source);  // frees ctx too
        return fail("cannot add " + item.path.string() + " to the zip");
      }
      const bool store = StoreRatherThanDeflate(root, item);
      if (zip_set_file_compression(za, static_cast<zip_uint64_t>(index),
                                   store ? ZIP_CM_STORE : ZIP_CM_DEFLATE,
                                   store ? 0 : kDeflateLevel) != 0) {
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

Result<ExtractStats> ExtractZip(const fs::path& zip_path, const fs::path& dest_dir,
                                const UnpackLimits& limits) {
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
    // headers that the strict check rejects. Such a zip is read only if our
    // own layout check below passes; the CRC of every entry is still
    // verified while reading.
    spdlog::info("{} failed libzip's consistency check; reading it if its entries do not overlap",
                 zip_path.string());
    za.reset(zip_open(zip_path.c_str(), ZIP_RDONLY, &error_code));
  }
  if (!za) {
    if (error_code == ZIP_ER_NOENT) return NotFound("no file at " + zip_path.string());
    if (error_code == ZIP_ER_OPEN || error_code == ZIP_ER_READ) {
      return IoError("cannot read " + zip_path.string() + ": " + LibzipErrorText(error_code));
    }
    return InvalidInput(zip_path.string() + " is not a valid zip file (" + LibzipErrorText(error_code) + ")");
  }
  zip_int64_t count = zip_get_num_entries(za.get(), 0);
  if (limits.max_entries != 0 && count > 0 && static_cast<std::uint64_t>(count) > limits.max_entries) {
    return InvalidInput("the zip has " + std::to_string(count) + " entries, more than the " +
                        std::to_string(limits.max_entries) + " allowed");
  }
  {
    CW_ASSIGN_OR_RETURN(Layout layout, ReadLayout(zip_path, limits));
    CW_RETURN_IF_ERROR(CheckLayout(za.get(), zip_path, std::move(layout)));
  }

  fs::create_directories(dest_dir, ec);
  if (ec) return IoError("cannot create folder " + dest_dir.string() + ": " + ec.message());
  fs::path dest = fs::canonical(dest_dir, ec);
  if (ec) return IoError("cannot resolve " + dest_dir.string() + ": " + ec.message());

  // Every entry and limit is checked before anything is written, so a
  // refused zip leaves nothing behind.
  CW_ASSIGN_OR_RETURN(std::vector<PlannedEntry> plan, PlanEntries(za.get(), zip_path, dest, limits));
  std::uint64_t declared = 0;
  for (const PlannedEntry& entry : plan) {
    declared = entry.size > std::numeric_limits<std::uint64_t>::max() - declared
                   ? std::numeric_limits<std::uint64_t>::max()
                   : declared + entry.size;
  }
  if (limits.max_bytes != 0 && declared > limits.max_bytes) {
    return InvalidInput(TooBigMessage(limits) + "; its entries add up to " + FormatGb(declared) + " GB");
  }
  Budget budget{limits, dest, 0, std::numeric_limits<std::uint64_t>::max(), 0};
  if (limits.min_free_bytes != 0) {
    CW_ASSIGN_OR_RETURN(std::uint64_t free_now, FreeBytes(dest));
    if (free_now < limits.min_free_bytes || free_now - limits.min_free_bytes < declared) {
      return IoError(LowSpaceMessage(limits, dest) + "; the zip needs " + FormatGb(declared) + " GB and " +
                     FormatGb(free_now) + " GB are free");
    }
    budget.free_room = free_now - limits.min_free_bytes;
    budget.next_free_check = 64u << 20;
  }

  Unpacked unpacked(dest);
  ExtractStats stats;
  std::vector<const PlannedEntry*> dirs;
  auto unpack = [&]() -> Status {
    for (const PlannedEntry& entry : plan) {
      if (IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
      fs::path target = dest / entry.relative;
      if (entry.is_dir) {
        CW_RETURN_IF_ERROR(unpacked.MakeDirs(target, entry));
        dirs.push_back(&entry);
        continue;
      }
      CW_RETURN_IF_ERROR(unpacked.MakeDirs(target.parent_path(), entry));
      CW_RETURN_IF_ERROR(ExtractFile(za.get(), zip_path, entry, target, budget, unpacked));
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
    return Status::Ok();
  };
  if (Status done = unpack(); !done.ok()) {
    unpacked.RemoveAll();
    return done;
  }
  stats.bytes = budget.written;
  return stats;
}

Status CreateZip(const fs::path& src_dir, const fs::path& zip_path,
                 const std::function<bool()>& cancelled) {
  std::error_code ec;
  if (!fs::is_directory(src_dir, ec)) return NotFound("no folder at " + src_dir.string());
  // The zip may be written inside the folder being zipped; an older copy of
  // it must not end up inside the new one.
  fs::path skip_path = fs::weakly_canonical(zip_path, ec);
  if (ec) skip_path.clear();
  fs::path src = fs::canonical(src_dir, ec);
  if (ec) return IoError("cannot resolve " + src_dir.string() + ": " + ec.message());

  std::vector<SourceItem> items;
  CW_RETURN_IF_ERROR(CollectItems(src, "", skip_path, cancelled, items));

  if (!zip_path.parent_path().empty()) {
    fs::create_directories(zip_path.parent_path(), ec);
    if (ec) return IoError("cannot create folder " + zip_path.parent_path().string() + ": " + ec.message());
  }
  fs::path tmp = zip_path;
  tmp += ".part-" + RandomSuffix();
  Status status = WriteZip(src, items, tmp, cancelled);
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
