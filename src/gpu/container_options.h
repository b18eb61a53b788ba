// The container options every job gets from the worker's settings (network,
// proxies, GPU_DEVICE, podman), shared by `run` and `run-local`.
#pragma once

#include "common/status.h"
#include "config/config.h"
#include "job/job_runner.h"

namespace cw {

// InvalidInput naming GPU_DEVICE when USE_GPU is on and GPU_DEVICE is wrong.
Result<ContainerOptions> ContainerOptionsFromConfig(const WorkerConfig& config);

}  // namespace cw
