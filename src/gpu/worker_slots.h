// The queue worker's slots from its settings: how many jobs run at once,
// which GPUs and CPUs each owns, and the container options that follow. One
// function, so `run` and `doctor` plan the same way.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "gpu/gpu_info.h"
#include "gpu/slots.h"
#include "job/job_runner.h"

namespace cw {

struct WorkerSlot {
  SlotPlan plan;
  ContainerOptions options;
  // Put on every container of the slot: org.codabench.slot, and
  // org.codabench.gpus (the UUIDs, as in NVIDIA_VISIBLE_DEVICES) for a slot
  // that owns GPUs.
  std::map<std::string, std::string> labels;
};

inline constexpr const char* kLabelSlot = "org.codabench.slot";
inline constexpr const char* kLabelGpus = "org.codabench.gpus";

// True when the settings ask for GPUs: USE_GPU, GPUS_PER_SLOT or GPU_MAP.
// Only then are GPUs looked for.
bool WantsGpus(const WorkerConfig& config);

// The plan, first rule that applies:
//   - No GPUs wanted: WORKER_SLOTS CPU slots (1 by default; "auto" is 1).
//   - GPUs wanted but discovery failed: Unavailable with its reason (running
//     CPU-only on a GPU machine by accident is worse than not starting).
//   - GPUs wanted, none seen: with GPUS_PER_SLOT or GPU_MAP, InvalidInput
//     (the worker cannot split GPUs it cannot see); with only USE_GPU, every
//     slot asks for GPU_DEVICE as the Python worker does (a worker container
//     without GPU access of its own still runs GPU jobs).
//   - GPU_DEVICE set to something other than its default, without
//     GPUS_PER_SLOT or GPU_MAP: every slot asks for exactly GPU_DEVICE.
//   - Otherwise slots own GPUs (PlanSlots): WORKER_SLOTS unset = one slot with
//     every GPU (the Python worker's behaviour), "auto" = one slot per GPU, N =
//     the GPUs split across N slots; GPUS_PER_SLOT and GPU_MAP as in PlanSlots.
// CPUs are split across slots (SPLIT_CPUS, on by default) using cpu_count,
// the engine host's CPUs. Notes for the start-up log go to `notes`.
Result<std::vector<WorkerSlot>> PlanWorkerSlots(const WorkerConfig& config,
                                                const Result<std::vector<GpuInfo>>& gpus,
                                                int cpu_count, std::vector<std::string>* notes);

}  // namespace cw
