#include "common/files.h"

#include <ftw.h>
#include <sys/stat.h>

#include <random>

namespace cw {
namespace fs = std::filesystem;

std::string RandomHex(int bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(bytes) * 2);
  for (int i = 0; i < bytes; ++i) {
    unsigned v = static_cast<unsigned>(rng() & 0xff);
    out.push_back(digits[v >> 4]);
    out.push_back(digits[v & 0xf]);
  }
  return out;
}

Result<fs::path> MakeUniqueDir(const fs::path& parent, const std::string& prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return IoError("cannot create folder " + parent.string() + ": " + ec.message());
  for (int attempt = 0; attempt < 16; ++attempt) {
    fs::path dir = parent / (prefix + RandomHex(6));
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) return IoError("cannot create folder " + dir.string() + ": " + ec.message());
  }
  return IoError("cannot find a free folder name under " + parent.string());
}

Status CopyTreeContents(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  fs::create_directories(dst, ec);
  if (ec) return IoError("cannot create " + dst.string() + ": " + ec.message());
  for (auto it = fs::recursive_directory_iterator(src, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto& entry = *it;
    fs::path rel = fs::relative(entry.path(), src, ec);
    if (ec) break;
    fs::path target = dst / rel;
    if (entry.is_symlink(ec)) continue;
    if (entry.is_directory(ec)) {
      fs::create_directories(target, ec);
    } else if (entry.is_regular_file(ec)) {
      fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing, ec);
    }
    if (ec) return IoError("cannot copy " + entry.path().string() + ": " + ec.message());
  }
  if (ec) return IoError("cannot copy " + src.string() + ": " + ec.message());
  return Status::Ok();
}

std::uintmax_t TreeSize(const fs::path& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  }
  return total;
}

namespace {

thread_local TreeUsage* g_usage = nullptr;

int CountEntry(const char*, const struct stat* st, int type, struct FTW*) {
  ++g_usage->entries;
  if (type == FTW_DNR) ++g_usage->unreadable;
  if (type == FTW_F && S_ISREG(st->st_mode)) g_usage->bytes += static_cast<std::uintmax_t>(st->st_size);
  return 0;  // go on, whatever this entry was
}

}  // namespace

TreeUsage MeasureTree(const fs::path& dir) {
  TreeUsage usage;
  g_usage = &usage;
  // FTW_PHYS: links are reported as links, never followed; FTW_MOUNT: stay
  // on one file system.
  ::nftw(dir.c_str(), CountEntry, 32, FTW_PHYS | FTW_MOUNT);
  g_usage = nullptr;
  return usage;
}

fs::path ToHostPath(const fs::path& path, const fs::path& base, const fs::path& host_base) {
  fs::path rel = path.lexically_normal().lexically_relative(base.lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return path;
  if (rel == ".") return host_base.lexically_normal();
  return (host_base / rel).lexically_normal();
}

}  // namespace cw
