// The container options every job gets from the worker's settings (network,
// proxies, GPU_DEVICE, podman, IPC, shared memory, limits, extra mounts),
// shared by `run` and `run-local`. Slots refine them (gpu/worker_slots.h).
#pragma once

#include "common/status.h"
#include "config/config.h"
#include "gpu/slots.h"
#include "job/job_runner.h"

namespace cw {

// GPU_DRIVER: "" or "cdi" -> kCdi (what Codabench's worker sends), "nvidia"
// -> kNvidia (Docker's --gpus, what the one-worker-per-GPU fork sends).
Result<GpuDriverMode> GpuDriverFromConfig(const WorkerConfig& config);

// InvalidInput naming the setting (and its `run` option) when one is wrong:
// GPU_DEVICE with USE_GPU on, CONTAINER_IPC, CONTAINER_SHM_SIZE,
// CONTAINER_MEMORY, CONTAINER_CPUS, EXTRA_MOUNTS, GPU_DRIVER.
// With USE_GPU on, every container asks for GPU_DEVICE's devices: as CDI
// names, or with GPU_DRIVER=nvidia as the nvidia driver's ids (the part after
// '=', "all" meaning every GPU). Slots that own GPUs replace these.
Result<ContainerOptions> ContainerOptionsFromConfig(const WorkerConfig& config);

// The disk limits of every job (MAX_UNPACKED_SIZE_GB, MAX_UNPACKED_FILES,
// MIN_FREE_DISK_GB, MAX_OUTPUT_SIZE_GB), in bytes.
JobLimits JobLimitsFromConfig(const WorkerConfig& config);

}  // namespace cw
