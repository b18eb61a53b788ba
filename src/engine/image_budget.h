// Keeps the engine's image store under MAX_IMAGE_STORE_GB, so no admin needs a
// `docker system prune` cron job: after a job, the least recently used
// competition images that no running job uses are removed until the store
// fits.
//
// Only images this worker has run jobs in are ever removed: they are
// recorded, with when each was last used, in a small file under
// HOST_DIRECTORY, so the record outlives restarts. Other images on the host
// (the worker's own, anything else) are never touched, and the engine itself
// refuses to remove an image a container uses.
//
// Thread rules: every method may be called from any slot at once, but
// set_on_measured, which is for start-up (before the first job). mu_ guards
// the record and is never held across an engine call; enforce_mu_ makes one
// sweep at a time and is held across the sweep's engine calls (see Sweep).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "engine/engine.h"

namespace cw {

// "python:3.12" for "python:3.12", "docker.io/library/python:3.12" and
// "python@..."-less "python" (":latest"): the form the engine lists tags in.
std::string NormalizeImageName(const std::string& image);

class ImageBudget {
 public:
  // max_bytes 0: never remove anything (the record is still kept).
  // `podman`: the engine lists an image a job named without a registry
  // ("team/model:1", only ever local) as "localhost/team/model:1".
  ImageBudget(ContainerEngine& engine, std::uint64_t max_bytes, std::filesystem::path record,
              std::function<long long()> now_unix = {}, bool podman = false);

  // A job starts using `image`: it is recorded as used now and never removed
  // until the matching Release.
  void Acquire(const std::string& image);
  void Release(const std::string& image);

  struct Outcome {
    long long before_bytes = 0;
    long long after_bytes = 0;
    std::vector<std::string> removed;  // names, least recently used first
  };
  // Removes least recently used, unused, recorded images until the store
  // fits. Unavailable when the engine cannot say how big its store is.
  Result<Outcome> Enforce();

  std::uint64_t max_bytes() const { return max_bytes_; }

  // Told the store's size after each Enforce that could measure it (the
  // metrics' image_store_bytes). Set before the first job; must not block.
  void set_on_measured(std::function<void(long long bytes)> on_measured) {
    on_measured_ = std::move(on_measured);
  }

 private:
  Result<Outcome> Sweep() EXCLUDES(mu_, enforce_mu_);
  // Writes the record: a small local file, under mu_ so that the writes land
  // in the order of the changes.
  void SaveLocked() REQUIRES(mu_);
  // The name a job would have recorded for one of the engine's tags.
  std::string RecordedName(const std::string& tag) const REQUIRES(mu_);

  ContainerEngine& engine_;
  const std::uint64_t max_bytes_;
  const std::filesystem::path record_;
  std::function<long long()> now_;              // set in the constructor
  std::function<void(long long)> on_measured_;  // set before the first job
  const bool podman_;

  Mutex enforce_mu_ ACQUIRED_BEFORE(mu_);  // one sweep at a time

  Mutex mu_;
  std::map<std::string, long long> last_used_ GUARDED_BY(mu_);  // normalized name -> unix seconds
  std::map<std::string, int> in_use_ GUARDED_BY(mu_);           // normalized name -> running jobs
};

}  // namespace cw
