// What every job of a worker (or of one of its slots) runs with: the
// admin's container options, the disk limits and the JobEnvironment that
// JobRunner and each part of the pipeline read. Plain data, set before the
// first job and read-only while jobs run.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/env.h"
#include "engine/engine.h"
#include "engine/image_budget.h"
#include "job/gpu_usage.h"
#include "report/progress.h"

namespace cw {

enum class PullPolicy {
  kAlways,   // pull every time; a local copy serves when the registry fails
  kMissing,  // pull only when the image is not on the machine
  kNever,    // use the local image or fail
};

// Options an admin sets once for every job (per slot for GPU workers).
struct ContainerOptions {
  bool network_disabled = false;
  // COMPETITION_CONTAINER_NETWORK: the network programs (or their network
  // holders) sit on; "" = the engine's default.
  std::string network;
  std::string http_proxy;
  std::string https_proxy;
  std::vector<DeviceRequest> device_requests;
  std::string ipc_mode;
  long long shm_size_bytes = 0;
  long long memory_bytes = 0;
  double nano_cpus = 0;
  std::string cpuset_cpus;
  std::vector<Mount> extra_mounts;  // host paths, mounted into every program
  std::vector<std::string> env;     // "KEY=value" for every program (a slot's NVIDIA_VISIBLE_DEVICES)
  bool podman = false;              // podman also wants label=disable (SELinux labels on mounts)
  long long pids_limit = 0;         // CONTAINER_PIDS_LIMIT; 0 = engine default
  long long nofile_limit = 0;       // CONTAINER_NOFILE_LIMIT; 0 = engine default
  // CONTAINER_RUNTIME: the OCI runtime of every program; "" = the engine's
  // default. Not the worker's own containers (network holders, folder
  // removal): they run only the worker's own binary.
  std::string runtime;
};

// What one job's bundles and programs may take of the host's disk
// (README "Security"). 0 turns a limit off.
struct JobLimits {
  std::uint64_t max_unpacked_bytes = 0;  // MAX_UNPACKED_SIZE_GB, per bundle
  std::uint64_t max_unpacked_files = 0;  // MAX_UNPACKED_FILES, per bundle
  std::uint64_t min_free_bytes = 0;      // MIN_FREE_DISK_GB, on HOST_DIRECTORY's disk
  std::uint64_t max_output_bytes = 0;    // MAX_OUTPUT_SIZE_GB: what the programs write
  // How often the folders the programs write are measured while they run.
  std::chrono::milliseconds output_check_interval{1000};
  // MAX_OUTPUT_SIZE_GB held by a filesystem of each job's own
  // (job/job_filesystem.h), as the start-up probe found the host allows;
  // else the folders are walked.
  bool job_filesystem = false;
};

class NetworkHolders;
class SpareJobFolders;

struct JobEnvironment {
  std::filesystem::path base_dir;  // this process's view of HOST_DIRECTORY
  std::filesystem::path host_dir;  // the engine daemon's view of the same folder
  std::string hostname;
  ContainerOptions container;
  PullPolicy pull_policy = PullPolicy::kAlways;
  bool keep_job_dir = false;
  // Labels put on every container, beside the job's own (worker name, slot).
  std::map<std::string, std::string> labels;
  // The slot's network namespaces made ahead (job/network_holders.h); null:
  // each program's container gets a network of its own when it starts.
  std::shared_ptr<NetworkHolders> network_holders;
  // The slot's job folders made ahead, each with its own filesystem
  // (job/spare_job_folders.h); null: each job makes its own.
  std::shared_ptr<SpareJobFolders> spare_folders;
  // The worker's own image (sandbox/sandbox_image.h), as the engine names
  // it; "" when it could not be loaded.
  std::string sandbox_image;
  // The limits the engine cannot enforce (UnenforcedLimits, engine/engine.h),
  // told in each job's log; "" when it enforces them all.
  std::string unenforced_limits;
  // false where the engine's stats are not the containers' own
  // (StatsArePerContainer, engine/engine.h): no memory or CPU figure is
  // sampled, logged or written into `metadata` rather than the host's.
  bool usage_figures = true;
  // How often the scoring output is looked at for new detailed results
  // (an lstat), and the least time between two uploads of them.
  std::chrono::milliseconds detailed_results_interval{250};
  std::chrono::milliseconds detailed_results_min_gap{1000};
  // How often each running program's memory and CPU use is sampled.
  std::chrono::milliseconds usage_interval{1000};
  // Each program's stdout and stderr are kept up to this size on disk (and
  // uploaded); past it the rest is dropped with a note. 0 = no cap.
  std::uint64_t max_log_bytes = 1ull << 30;
  // WORKER_BUNDLE_URL_REWRITE, applied to every URL of run_args.
  std::function<std::string(const std::string&)> rewrite_url;
  // Where image pulls and bundle downloads show their progress (the
  // operator's terminal or log; never the site). Default: nowhere.
  ProgressDisplay progress;
  JobLimits limits;
  // The queue worker acks first and cleans up after (JobResult::cleanup);
  // otherwise containers and the folder are removed before Run returns.
  bool defer_cleanup = false;
  // Jobs get their folders under BASE/jobs/<this>/ (the queue worker: its
  // node name), so a restarted worker can sweep what its killed run left.
  std::string jobs_subfolder;
  // MAX_IMAGE_STORE_GB: the job's image is held while it runs; after the job
  // (in its cleanup) the store is brought back under budget. Null: no budget.
  std::shared_ptr<ImageBudget> images;
  // The slot's GPUs, measured while the programs run (gpu/gpu_sampler.h).
  // Null: no figures (a CPU slot, or no NVML), and no GPU keys in `metadata`.
  std::shared_ptr<GpuUsageMeter> gpu_usage;
  // The clock the time limit and the watchers' intervals count on, and the
  // file writes of unzipping, zipping and `metadata` (common/env.h). Tests
  // hand a TestEnv; never null.
  Env* env = &Env::Default();
};

}  // namespace cw
