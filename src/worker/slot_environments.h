// What each job of a worker runs with (JobEnvironment), from the settings:
// the part every run shares (run-local too), the queue worker's (node
// labels and folder, deferred cleanup, the image budget, progress in the
// log, URL rewriting), and one per slot (its GPUs, CPUs, labels, network
// holders).
//
// Threads: plain functions, called at start-up on the main thread.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "engine/engine.h"
#include "gpu/worker_slots.h"
#include "job/job_runner.h"
#include "metrics/worker_metrics.h"
#include "worker/gpu_figures.h"

namespace cw {

// This host's name, the job limits of `config`, and where job folders go
// (`base_dir` as this process sees it, `host_dir` as the engine does).
JobEnvironment BaseJobEnvironment(const WorkerConfig& config, const std::filesystem::path& base_dir,
                                  const std::filesystem::path& host_dir);

// The queue worker's environment for node `nodename`: BaseJobEnvironment
// plus what serving a queue adds. `metrics` (may be null) hears of the image
// store's size.
JobEnvironment QueueJobEnvironment(const WorkerConfig& config, const std::string& nodename,
                                   ContainerEngine& engine, metrics::WorkerMetrics* metrics);

// Loads the worker's own image (sandbox_image.h) into the engine before the
// first job: env.sandbox_image, left "" when the engine cannot load it (no
// network holders then), with an error in the log.
void PrepareEngine(JobEnvironment& env, ContainerEngine& engine);

// With GPUs for the programs (`requests`: a slot's), makes one container of
// the worker's own `image` with them and `labels`, without starting it, and
// asks the engine what it kept: Podman before 5 drops
// HostConfig.DeviceRequests through its Docker API without a word, and every
// program would run without its GPUs. InvalidInput then, saying so;
// OK when there are no requests, when the engine kept them, or when it
// cannot be told (no worker image, the engine's error: logged).
Status CheckGpuRequestsKept(const std::string& image, const std::vector<DeviceRequest>& requests,
                            const std::map<std::string, std::string>& labels,
                            ContainerEngine& engine);

// One environment per slot, in slot order: `base` with the slot's container
// options (on its network: EnsureProgramNetwork, job/network_holders.h), its
// labels and GPU meter,
// and (with network holders on, a network and the worker's image) network
// holders of its own, which start making their spares at once.
std::vector<JobEnvironment> SlotEnvironments(const JobEnvironment& base,
                                             const std::vector<WorkerSlot>& slots,
                                             const GpuFigures& gpu_figures, bool network_holders,
                                             ContainerEngine& engine, const std::string& nodename);

}  // namespace cw
