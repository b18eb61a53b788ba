// `codabench-worker doctor`: checks, one line each, that this machine can
// serve a Codabench queue with the given settings, and says what to do about
// each problem. Everything outside is reached through DoctorDeps, so the
// checks are unit-tested with fakes; the CLI passes the real engine, GPU
// discovery and broker.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "broker/broker_url.h"
#include "common/status.h"
#include "config/config.h"
#include "engine/engine.h"
#include "gpu/gpu_info.h"
#include "job/job_filesystem.h"

namespace cw {

struct DoctorCheck {
  enum class Level { kOk, kWarn, kFail, kSkip };
  std::string name;    // "engine", "broker", ...
  Level level = Level::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do, for kWarn and kFail
};

struct BrokerProbe {
  bool queue_exists = false;
  std::uint32_t messages = 0;
  std::uint32_t consumers = 0;
};

struct DiskSpace {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

struct DoctorDeps {
  ContainerEngine* engine = nullptr;
  std::function<Result<std::vector<GpuInfo>>()> discover_gpus;
  // Connects and logs in, then looks at the compute-worker queue.
  std::function<Result<BrokerProbe>(const BrokerAddress&)> probe_broker;
  // Free space of the file system holding a path (statvfs by default).
  std::function<Result<DiskSpace>(const std::filesystem::path&)> disk_space;
  // How MAX_OUTPUT_SIZE_GB would be held (job/job_filesystem.h); null: the
  // real probe, which formats and mounts a small image.
  std::function<OutputLimitChoice(const WorkerConfig&)> output_limit;
};

struct DoctorOptions {
  // The image to ask the registry about and, when it is on the machine, to
  // run the GPU and HOST_DIRECTORY probes in (it needs `cat`).
  std::string image = "codalab/codalab-legacy:py37";
  std::string socket;  // for the engine line
  std::uint64_t min_free_bytes = 10ull << 30;
};

// Runs every check in order; a check whose prerequisite failed is kSkip.
std::vector<DoctorCheck> RunDoctor(const WorkerConfig& config, const DoctorOptions& options,
                                   const DoctorDeps& deps);

// "ok    engine     Docker 28.2.2 (API 1.50) at unix:///var/run/docker.sock"
// plus an indented "-> what to do" line for problems.
std::string FormatCheck(const DoctorCheck& check);

// statvfs.
Result<DiskSpace> StatDiskSpace(const std::filesystem::path& path);

}  // namespace cw
