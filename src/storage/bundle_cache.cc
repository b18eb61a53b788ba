#include "storage/bundle_cache.h"

#include "common/files.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <system_error>
#include <tuple>
#include <vector>

#include <spdlog/spdlog.h>

#include "storage/file_util.h"
#include "storage/hash.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPartMarker = ".part-";
constexpr auto kStalePartAge = std::chrono::hours(1);

// Cache entries are exactly the files named by a key; anything else in the
// folder is not ours to count or delete.
bool IsKeyName(const std::string& name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

struct CacheEntry {
  fs::path path;
  std::uint64_t size = 0;
  fs::file_time_type mtime;
};

std::vector<CacheEntry> ListEntries(const fs::path& dir) {
  std::vector<CacheEntry> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!IsKeyName(it->path().filename().string())) continue;
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec) || it->is_symlink(entry_ec)) continue;
    CacheEntry entry;
    entry.path = it->path();
    entry.size = it->file_size(entry_ec);
    if (entry_ec) continue;  // removed meanwhile
    entry.mtime = it->last_write_time(entry_ec);
    if (entry_ec) continue;
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

std::uint64_t CacheBytesFromGb(double gb) {
  if (!(gb > 0)) return 0;
  double bytes = std::round(gb * 1e9);
  if (bytes >= static_cast<double>(std::numeric_limits<std::uint64_t>::max())) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  return static_cast<std::uint64_t>(bytes);
}

BundleCache::BundleCache(fs::path dir, std::uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    spdlog::warn("cannot create bundle cache folder {}: {}", dir_.string(), ec.message());
    return;
  }
  // Reference data is the competition's hidden truth: no other user of the
  // host may read it here.
  fs::permissions(dir_, fs::perms::owner_all, ec);
  // Downloads cut short by a crash; a live download keeps touching its file.
  auto cutoff = fs::file_time_type::clock::now() - kStalePartAge;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().find(kPartMarker) == std::string::npos) continue;
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec) || it->last_write_time(entry_ec) >= cutoff || entry_ec) continue;
    if (fs::remove(it->path(), entry_ec)) {
      spdlog::info("removed unfinished download {} from the bundle cache", it->path().string());
    }
  }
}

std::string BundleCache::KeyFor(const std::string& url) {
  return Sha256Hex(std::string_view(url).substr(0, url.find('?')));
}

Result<fs::path> BundleCache::PinLocked(const fs::path& entry, const fs::path& pin_as) {
  if (pin_as.empty()) return entry;
  std::error_code ec;
  fs::create_directories(pin_as.parent_path(), ec);
  fs::remove(pin_as, ec);
  fs::create_hard_link(entry, pin_as, ec);
  if (ec) {  // another file system: a copy does as well
    ec.clear();
    fs::copy_file(entry, pin_as, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return IoError("cannot copy " + entry.string() + " to " + pin_as.string() + ": " +
                     ec.message());
    }
  }
  return pin_as;
}

Result<fs::path> BundleCache::Get(const std::string& url, Storage& storage,
                                  const fs::path& pin_as, const TransferProgressFn& progress) {
  const std::string key = KeyFor(url);
  const fs::path entry = dir_ / key;
  {
    MutexLock lock(mu_);
    std::error_code ec;
    if (fs::is_regular_file(entry, ec)) {
      // The mtime is the "last used" time eviction goes by.
      fs::last_write_time(entry, fs::file_time_type::clock::now(), ec);
      if (!ec) return PinLocked(entry, pin_as);
    }
  }

  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return IoError("cannot create bundle cache folder " + dir_.string() + ": " + ec.message());
  // Downloads run outside the lock, so one slow bundle does not hold up the
  // other jobs. A unique name per download keeps two jobs fetching the same
  // URL out of each other's way; the last rename wins, with the same content.
  fs::path part = dir_ / (key + std::string(kPartMarker) + RandomHex(6));
  Status status = storage.Fetch(url, part, progress);
  if (status.ok() && !fs::is_regular_file(part, ec)) {
    status = Internal("storage reported " + url + " fetched but wrote no file");
  }
  if (!status.ok()) {
    fs::remove(part, ec);
    return status;
  }

  MutexLock lock(mu_);
  fs::rename(part, entry, ec);
  if (ec) {
    Status rename_status = IoError("cannot rename " + part.string() + " to " + entry.string() + ": " + ec.message());
    fs::remove(part, ec);
    return rename_status;
  }
  fs::last_write_time(entry, fs::file_time_type::clock::now(), ec);
  EvictLocked(entry);
  return PinLocked(entry, pin_as);
}

bool BundleCache::Keep(const std::string& url, const fs::path& file) {
  const std::string key = KeyFor(url);
  const fs::path entry = dir_ / key;
  fs::path part = dir_ / (key + std::string(kPartMarker) + RandomHex(6));
  std::error_code ec;
  fs::create_hard_link(file, part, ec);
  if (ec) {
    spdlog::debug("not keeping {} for the scoring job: {}", file.string(), ec.message());
    return false;
  }
  MutexLock lock(mu_);
  fs::rename(part, entry, ec);
  if (ec) {
    fs::remove(part, ec);
    return false;
  }
  fs::last_write_time(entry, fs::file_time_type::clock::now(), ec);
  // A kept output is worth less than the data every job of the competition
  // reads, but LRU has no way to say so; the budget is what bounds it.
  EvictLocked({});
  return fs::is_regular_file(entry, ec);
}

Result<std::optional<fs::path>> BundleCache::Claim(const std::string& url,
                                                   const fs::path& take_as) {
  const fs::path entry = dir_ / KeyFor(url);
  MutexLock lock(mu_);
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(entry, ec))) return std::optional<fs::path>();
  fs::create_directories(take_as.parent_path(), ec);
  fs::rename(entry, take_as, ec);
  if (ec) {
    // Another file system: link or copy, then drop the entry all the same.
    Result<fs::path> pinned = PinLocked(entry, take_as);
    fs::remove(entry, ec);
    if (!pinned.ok()) return pinned.status();
  }
  return std::optional<fs::path>(take_as);
}

void BundleCache::EvictLocked(const fs::path& keep) {
  std::vector<CacheEntry> entries = ListEntries(dir_);
  std::uint64_t total = 0;
  for (const CacheEntry& e : entries) total += e.size;
  if (total <= max_bytes_) return;
  std::sort(entries.begin(), entries.end(), [](const CacheEntry& a, const CacheEntry& b) {
    return std::tie(a.mtime, a.path) < std::tie(b.mtime, b.path);
  });
  for (const CacheEntry& e : entries) {
    if (total <= max_bytes_) break;
    if (e.path == keep) continue;
    std::error_code ec;
    if (fs::remove(e.path, ec) || !fs::exists(e.path, ec)) {
      total -= e.size;
      spdlog::info("evicted {} ({} bytes) from the bundle cache", e.path.filename().string(), e.size);
    } else {
      spdlog::warn("cannot evict {} from the bundle cache: {}", e.path.string(), ec.message());
    }
  }
  if (total > max_bytes_ && !keep.empty()) {
    spdlog::warn("bundle cache holds {} bytes, over its limit of {} bytes: {} is in use and kept",
                 total, max_bytes_, keep.filename().string());
  }
}

std::uint64_t BundleCache::SizeBytes() {
  MutexLock lock(mu_);
  std::uint64_t total = 0;
  for (const CacheEntry& e : ListEntries(dir_)) total += e.size;
  return total;
}

}  // namespace cw
