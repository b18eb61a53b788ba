// Job folders with a filesystem of their own, made before a job needs one.
// Where MAX_OUTPUT_SIZE_GB is held by the kernel (job/job_filesystem.h),
// each job's folder gets an ext4 filesystem: a sparse image, mkfs.ext4, a
// loop device and a mount, some 15-30 ms of a short job's path on a 2-CPU
// machine. A slot keeps one spare made in the background while its current
// job runs; JobFolder::Create takes it and renames it to the job's name
// (the mount moves with its folder), so no job ever gets a folder or a
// filesystem another job used: each spare is made fresh, used once, and
// removed with its job.
//
// A spare sits in the node's jobs folder as "spare-XXXXXX", so a restart's
// sweep (RemoveLeftoverJobFolders) removes one a killed worker left.
//
// Thread rules: Prepare and Take may be called from any thread (the slot's
// job threads); the spares are made on the pool's own thread
// (common/spare_pool.h).
#pragma once

#include <filesystem>

#include "common/spare_pool.h"
#include "job/job_environment.h"

namespace cw {

class SpareJobFolders {
 public:
  // `jobs` is the node's jobs folder (JobsFolder); `limits` size the
  // filesystems as JobFolder::Create would (JobFilesystemBytes).
  SpareJobFolders(std::filesystem::path jobs, JobLimits limits, int spares = 1);
  // Stops making spares and removes those no job took.
  ~SpareJobFolders();
  SpareJobFolders(const SpareJobFolders&) = delete;
  SpareJobFolders& operator=(const SpareJobFolders&) = delete;

  // Starts making the spares, so the first job finds one ready.
  void Prepare();

  // The root of a ready folder (its filesystem mounted at work/), now the
  // caller's to rename and, with its job, remove; another is then made in
  // the background. Empty when none is ready: the caller makes its own.
  std::filesystem::path Take();

  // Spares ready now.
  std::size_t ready() const;

 private:
  // A new spare's root, or an error (its half-made folder removed).
  Result<std::filesystem::path> Make() const;

  const std::filesystem::path jobs_;
  const JobLimits limits_;
  SparePool<std::filesystem::path> pool_;  // last: goes before the members above
};

}  // namespace cw
