// A size-capped cache of downloaded bundles (datasets, programs, reference
// data), shared by the jobs of one worker, least recently used out first.
//
// Thread rules: every method may be called from any thread (each slot's
// jobs at once, the metrics server's SizeBytes). mu_ guards the cache
// folder's entries, not a member: it is held across local file-system calls
// only (stat, rename, link, and the copy a pin makes across file systems, so
// an entry cannot be evicted half read), never across a download.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "storage/storage.h"

namespace cw {

// Bytes for MAX_CACHE_DIR_SIZE_GB (decimal gigabytes, fractions allowed).
// Zero, negative and NaN give 0 (keep only the bundle just fetched).
std::uint64_t CacheBytesFromGb(double gb);

class BundleCache {
 public:
  // Creates `dir` when missing and removes download leftovers (*.part-*)
  // older than an hour. Never fails: a folder that cannot be made shows up
  // as an error from Get.
  BundleCache(std::filesystem::path dir, std::uint64_t max_bytes);

  // The cached copy of `url`, fetched through `storage` on a miss. Query
  // strings do not count (signed URLs differ on every request). Thread-safe.
  // Without `pin_as`, the returned file may be evicted by another job's Get
  // before it is read. With it, the entry is hard-linked (copied across file
  // systems) to `pin_as` while the cache is locked, and that path returned:
  // the job's copy stays whole whatever the other slots evict.
  // `progress` hears how a download on a miss goes.
  Result<std::filesystem::path> Get(const std::string& url, Storage& storage,
                                    const std::filesystem::path& pin_as = {},
                                    const TransferProgressFn& progress = {});

  // A file this worker just stored at `url` (a prediction output it
  // uploaded), kept so that the scoring job of the same submission, when it
  // runs here, reads it instead of downloading it again. The storage key of
  // the scoring job's GET URL is the one that was PUT, so both have the same
  // key (the URL without its query). Kept by a hard link, only when `file` is
  // on the cache's file system (a copy would cost what it saves), and under
  // the cache's budget like any entry. False when not kept.
  bool Keep(const std::string& url, const std::filesystem::path& file);

  // The file kept for `url`, moved to `take_as` and out of the cache (a
  // prediction output is read by one scoring job); nullopt when none is kept.
  Result<std::optional<std::filesystem::path>> Claim(const std::string& url,
                                                     const std::filesystem::path& take_as);

  // SHA-256 hex of the URL without its query string: the same file name the
  // Python worker uses, so an existing cache folder keeps working.
  static std::string KeyFor(const std::string& url);

  // Total size of the cached bundles (not of downloads in progress).
  std::uint64_t SizeBytes();

  const std::filesystem::path& dir() const { return dir_; }
  std::uint64_t max_bytes() const { return max_bytes_; }

 private:
  // Removes least recently used entries until under the budget, never
  // `keep` (empty: any entry may go).
  void EvictLocked(const std::filesystem::path& keep) REQUIRES(mu_);
  Result<std::filesystem::path> PinLocked(const std::filesystem::path& entry,
                                          const std::filesystem::path& pin_as) REQUIRES(mu_);

  const std::filesystem::path dir_;
  const std::uint64_t max_bytes_;
  Mutex mu_;  // the folder's entries (see the top)
};

}  // namespace cw
