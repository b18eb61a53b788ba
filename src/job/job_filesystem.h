// A job's own filesystem: how MAX_OUTPUT_SIZE_GB is held by the kernel
// where the host allows it. The folders a job's programs can write
// (output/, program/, input/, ...) then live on an ext4 filesystem of
// their own, in a sparse image file of the job's folder mounted through a
// loop device. Its used bytes (statvfs) count everything the programs
// put there: files in folders the worker cannot read, files deleted but
// still open, paths too deep for any walk; and it cannot grow past its size.
// Where the host does not allow it (the worker is not root, runs in a
// container, or has no mkfs.ext4 or loop device), the disk watcher walks
// the folders instead (README "Security", "Disk").
//
// Thread rules: free functions without shared state; any thread. The probe
// is for start-up (it formats and mounts a small image).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"
#include "job/job_environment.h"

namespace cw {

// How MAX_OUTPUT_SIZE_GB is measured, chosen once at start.
struct OutputLimitChoice {
  bool job_filesystem = false;  // each job's own filesystem; else the walk
  std::string how;              // one line for the start-up log and doctor
};

// Whether each job under `jobs_dir` can have a filesystem of its own: this
// process is root, shares its mount namespace with the process serving
// `engine_socket` ("unix:///var/run/docker.sock"; so the engine's daemon
// sees the mounts), sees HOST_DIRECTORY where the engine does
// (`same_view`), and a small image formats and mounts in `jobs_dir`.
OutputLimitChoice ProbeJobFilesystems(const std::filesystem::path& jobs_dir, bool same_view,
                                      const std::string& engine_socket);

// Probes (when MAX_OUTPUT_SIZE_GB is set) and sets env.limits.job_filesystem,
// and says in the log how the limit is held: every start says which.
void ChooseOutputLimit(JobEnvironment& env, const std::string& engine_socket);

// The size of a job's filesystem: the limit, room for what its bundles
// unpack to (MAX_UNPACKED_SIZE_GB each, at most the host's free bytes less
// MIN_FREE_DISK_GB), and a margin for the filesystem's own tables. Sparse:
// only what is written takes room on the host.
std::uint64_t JobFilesystemBytes(const JobLimits& limits, std::uint64_t host_free_bytes);

// Makes a sparse file of `bytes` at `image`, formats it ext4 (no journal:
// it never outlives a crash) and mounts it at `mount_point` (created)
// through a loop device that goes away when it is unmounted.
Status MountJobFilesystem(const std::filesystem::path& image,
                          const std::filesystem::path& mount_point, std::uint64_t bytes);

// A job folder's own filesystem: `root`/work.img mounted at `root`/work,
// of JobFilesystemBytes for the free bytes on root's disk now.
Status MountJobWork(const std::filesystem::path& root, const JobLimits& limits);

// Detaches every filesystem mounted at or under `dir`, deepest first, even
// a busy one (its blocks are freed when the last program holding a file
// there ends). Returns how many; a failure is logged.
int UnmountUnder(const std::filesystem::path& dir);

// True when `dir` is the root of a mount (its device differs from its parent's).
bool IsMountPoint(const std::filesystem::path& dir);

// The bytes in use on the filesystem holding `dir`, from statvfs.
Result<std::uint64_t> UsedBytes(const std::filesystem::path& dir);

// Free bytes for an unprivileged writer on the filesystem holding `dir`.
Result<std::uint64_t> FreeBytesOn(const std::filesystem::path& dir);

}  // namespace cw
