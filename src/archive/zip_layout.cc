#include "archive/zip_layout.h"

#include "archive/zip_internal.h"
#include "common/fd.h"
#include "common/units.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <system_error>

#include <spdlog/spdlog.h>

namespace cw {
namespace fs = std::filesystem;
using zip_internal::IsCancelled;
using zip_internal::IsUnderDir;
using zip_internal::LibzipErrorText;

namespace {

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

std::uint64_t NameHash(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

// The zip file, read only in bounded pieces.
class BoundedFile {
 public:
  BoundedFile(int fd, std::uint64_t size, const fs::path& path) : fd_(fd), size_(size), path_(path) {}

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

// Where the central directory is, as the end records say.
struct CdBounds {
  std::uint64_t count = 0;
  std::uint64_t size = 0;
  std::uint64_t offset = 0;
  std::uint64_t end = 0;  // offset + size, checked to lie before the end records
};

Result<CdBounds> FindCentralDirectory(const BoundedFile& in) {
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
  CdBounds cd;
  cd.count = Le16(eocd + 10);
  cd.size = Le32(eocd + 12);
  cd.offset = Le32(eocd + 16);
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
      cd.count = Le64(rec + 32);
      cd.size = Le64(rec + 40);
      cd.offset = Le64(rec + 48);
      cd_limit = rec_pos;
    }
  }
  if (!AddWithin(cd.offset, cd.size, cd_limit, cd.end)) {
    return in.Invalid("the central directory lies outside the file");
  }
  return cd;
}

constexpr std::size_t kCdHeader = 46;

// ZIP64 extended information in `extra`: 64-bit values for the fields set to
// all ones, in this order.
Status ApplyZip64Extra(const BoundedFile& in, const unsigned char* extra, std::size_t extra_len,
                       std::uint64_t& uncomp_size, std::uint64_t& comp_size, std::uint64_t& offset) {
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
  return Status::Ok();
}

// The central directory header at `pos` (moved past it) and the span of its
// entry in the file. `var` is scratch space for its name and extra field.
Result<EntrySpan> ReadEntry(const BoundedFile& in, std::uint64_t& pos, std::uint64_t cd_end,
                            std::vector<unsigned char>& var) {
  const std::uint64_t file_size = in.size();
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
  var.resize(name_len + extra_len);  // at most 128 KiB
  CW_RETURN_IF_ERROR(in.ReadAt(pos + kCdHeader, var.data(), var.size()));
  pos += header_len;

  if (uncomp_size == 0xffffffff || comp_size == 0xffffffff || offset == 0xffffffff) {
    CW_RETURN_IF_ERROR(ApplyZip64Extra(in, var.data() + name_len, extra_len, uncomp_size, comp_size, offset));
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
  EntrySpan span;
  span.start = offset;
  span.end = end;
  span.comp_size = comp_size;
  span.name_hash = NameHash(var.data(), name_len);
  return span;
}

// Entries of the libzip view `za` must be those of `layout` (same count, same
// raw names and compressed sizes, in order), and no two may share bytes.
Status CheckLayout(zip_t* za, const fs::path& zip_path, ZipLayout layout) {
  auto invalid = [&](const std::string& why) {
    return InvalidInput(zip_path.string() + " is not a valid zip file (" + why + ")");
  };
  zip_int64_t count = zip_get_num_entries(za, 0);
  if (count < 0 || static_cast<std::uint64_t>(count) != layout.entries ||
      layout.spans.size() != layout.entries) {
    return invalid("its central directory cannot be read consistently");
  }
  for (const EntrySpan& span : layout.spans) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, span.index, ZIP_FL_ENC_RAW, &st) != 0 || !(st.valid & ZIP_STAT_NAME) ||
        !(st.valid & ZIP_STAT_COMP_SIZE) || st.comp_size != span.comp_size ||
        NameHash(reinterpret_cast<const unsigned char*>(st.name), std::strlen(st.name)) != span.name_hash) {
      return invalid("its central directory cannot be read consistently");
    }
  }
  auto name_of = [&](const EntrySpan& span) {
    const char* name = zip_get_name(za, span.index, ZIP_FL_ENC_RAW);
    return std::string(name != nullptr ? name : "?");
  };
  std::sort(layout.spans.begin(), layout.spans.end(),
            [](const EntrySpan& a, const EntrySpan& b) { return a.start < b.start; });
  const EntrySpan* furthest = nullptr;
  for (const EntrySpan& span : layout.spans) {
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

// One entry as libzip sees it, checked: a name that stays inside `dest`, not
// a link, not encrypted. Sets `skip` (and returns an empty entry) for macOS
// litter and for folder entries naming `dest` itself ("./").
Result<PlannedEntry> PlanEntry(zip_t* za, zip_uint64_t index, const fs::path& zip_path,
                               const fs::path& dest, bool& skip) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(za, index, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) {
    return InvalidInput(zip_path.string() + " is not a valid zip file (" + zip_strerror(za) + ")");
  }
  std::string raw_name = st.name;
  CW_ASSIGN_OR_RETURN(fs::path relative, NormaliseEntryName(raw_name, skip));
  if (skip) return PlannedEntry{};

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
    return InvalidInput("zip entry '" + raw_name + "' is encrypted; the zip must be made without a password");
  }

  PlannedEntry entry;
  entry.index = index;
  entry.name = raw_name;
  entry.relative = relative;
  entry.size = (st.valid & ZIP_STAT_SIZE) ? st.size : 0;
  entry.is_dir = (!raw_name.empty() && (raw_name.back() == '/' || raw_name.back() == '\\')) ||
                 S_ISDIR(unix_mode);
  if (relative.empty()) {
    if (entry.is_dir) {  // "./" names the destination itself
      skip = true;
      return PlannedEntry{};
    }
    return InvalidInput("zip entry '" + raw_name + "' has no file name");
  }
  // Only the permission bits: set-uid and friends from a participant's zip
  // have no business on the host.
  mode_t perms = unix_mode & 0777;
  if (perms == 0) perms = entry.is_dir ? 0755 : 0644;
  // The worker must always be able to read, replace and clean up what it unpacked.
  entry.mode = perms | (entry.is_dir ? 0700 : 0600);

  // The name itself is clean by now, but a link already inside dest could
  // still carry it elsewhere.
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(dest / relative, ec);
  if (ec == std::errc::filename_too_long) {
    return InvalidInput("zip entry '" + raw_name + "' has a name too long to unpack");
  }
  if (ec) return IoError("cannot resolve " + (dest / relative).string() + ": " + ec.message());
  if (!IsUnderDir(resolved, dest)) return InvalidInput(OutsideMessage(raw_name));
  return entry;
}

}  // namespace

std::string OutsideMessage(const std::string& name) {
  return "zip entry '" + name + "' points outside the folder it is unpacked into";
}

std::string TooBigMessage(const UnpackLimits& limits) {
  std::string gb = FormatGb(limits.max_bytes);
  return "the zip unpacks to more than " + gb + " GB (" + limits.bytes_setting + "=" + gb + ")";
}

Result<ZipLayout> ReadZipLayout(const fs::path& zip_path, const UnpackLimits& limits) {
  Fd fd(::open(zip_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("cannot read " + zip_path.string() + ": " + ErrnoText(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IoError("cannot read " + zip_path.string() + ": " + ErrnoText(errno));
  BoundedFile in(fd.get(), static_cast<std::uint64_t>(st.st_size), zip_path);

  CW_ASSIGN_OR_RETURN(CdBounds cd, FindCentralDirectory(in));
  if (limits.max_entries != 0 && cd.count > limits.max_entries) {
    return InvalidInput("the zip has " + std::to_string(cd.count) + " entries, more than the " +
                        std::to_string(limits.max_entries) + " allowed");
  }
  if (cd.count > cd.size / kCdHeader) return in.Invalid("the central directory is too short for its entries");

  ZipLayout layout;
  layout.entries = cd.count;
  layout.cd_start = cd.offset;
  layout.cd_end = cd.end;
  // Grown as headers are actually read, not sized by what the record claims.
  layout.spans.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(cd.count, 1u << 16)));
  std::vector<unsigned char> var;
  std::uint64_t pos = cd.offset;
  for (std::uint64_t i = 0; i < cd.count; ++i) {
    if ((i & 1023) == 0 && IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
    CW_ASSIGN_OR_RETURN(EntrySpan span, ReadEntry(in, pos, cd.end, var));
    span.index = i;
    layout.spans.push_back(span);
  }
  return layout;
}

Result<ZipHandle> OpenCheckedZip(const fs::path& zip_path, const UnpackLimits& limits) {
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
    if (error_code == ZIP_ER_NOENT && !fs::exists(zip_path, ec)) return NotFound("no file at " + zip_path.string());
    // libzip also answers "no such file" when a header announces a ZIP64
    // field and lacks it: the zip's fault, not a missing file.
    if (error_code == ZIP_ER_NOENT) {
      return InvalidInput(zip_path.string() + " is not a valid zip file (a header lacks a field it announces)");
    }
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
  CW_ASSIGN_OR_RETURN(ZipLayout layout, ReadZipLayout(zip_path, limits));
  CW_RETURN_IF_ERROR(CheckLayout(za.get(), zip_path, std::move(layout)));
  return za;
}

Result<UnpackPlan> PlanUnpack(zip_t* za, const fs::path& zip_path, const fs::path& dest,
                              const UnpackLimits& limits) {
  UnpackPlan plan;
  zip_int64_t count = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    if ((i & 1023) == 0 && IsCancelled(limits.cancelled)) return Cancelled("unpacking was cancelled");
    bool skip = false;
    CW_ASSIGN_OR_RETURN(PlannedEntry entry, PlanEntry(za, static_cast<zip_uint64_t>(i), zip_path, dest, skip));
    if (!skip) plan.entries.push_back(std::move(entry));
  }
  for (const PlannedEntry& entry : plan.entries) {
    plan.declared_bytes = entry.size > std::numeric_limits<std::uint64_t>::max() - plan.declared_bytes
                              ? std::numeric_limits<std::uint64_t>::max()
                              : plan.declared_bytes + entry.size;
  }
  if (limits.max_bytes != 0 && plan.declared_bytes > limits.max_bytes) {
    return InvalidInput(TooBigMessage(limits) + "; its entries add up to " + FormatGb(plan.declared_bytes) + " GB");
  }
  return plan;
}

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

bool LooksLikeZip(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4];
  if (!in.read(magic, sizeof magic)) return false;
  return magic[0] == 'P' && magic[1] == 'K' &&
         ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6));
}

}  // namespace cw
