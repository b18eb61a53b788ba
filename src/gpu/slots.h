// Slots: one worker process serves N jobs at once, each slot owning a fixed
// set of GPUs and CPUs. This replaces the usual setup of one Python worker
// container per GPU, each pinned by hand (`--gpus device=<UUID>`).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "engine/engine.h"
#include "gpu/gpu_info.h"
#include "job/job_runner.h"

namespace cw {

struct SlotRequest {
  int slots = 0;          // 0 = automatic (one per GPU; one CPU slot without GPUs)
  int gpus_per_slot = 0;  // 0 = not set
  // Explicit GPU sets: "0,1;2,3" (indexes or UUIDs; ',' within a slot, ';'
  // between slots). Wins over the two fields above.
  std::string gpu_map;
  bool split_cpus = true;  // give each slot its own range of CPUs
};

struct SlotPlan {
  int index = 0;
  std::vector<GpuInfo> gpus;  // empty for a CPU-only slot
  std::string cpuset;         // "0-3", "5"; "" = no pinning
};

// Rules, first that applies:
//   1. gpu_map: exactly those GPUs (each must exist, none in two slots).
//   2. gpus_per_slot > 0: floor(GPUs / per_slot) slots of that many GPUs, in
//      index order (or `slots` of them when set and they fit).
//   3. slots > 0 with GPUs: GPUs split as evenly as possible in index order;
//      the first slots get one more when it does not divide.
//   4. no GPUs: `slots` CPU-only slots (1 when 0).
//   5. automatic with GPUs: one slot per GPU.
// CPUs (split_cpus, cpu_count > 0, more than one slot): [0, cpu_count) cut into contiguous
// ranges, one per slot, the first slots one CPU larger when it does not
// divide. With fewer CPUs than slots, slot i gets the single CPU
// i % cpu_count: slots then share CPUs, which beats refusing to start.
// InvalidInput with a message for the admin when the request cannot be met.
// Notes that are not errors (GPUs left unused, an ignored --slots) are
// appended to `warnings` when given.
Result<std::vector<SlotPlan>> PlanSlots(const std::vector<GpuInfo>& gpus, const SlotRequest& req,
                                        int cpu_count,
                                        std::vector<std::string>* warnings = nullptr);

// "slot 0: GPUs 0,1 (GPU-8f6c1a2b..., GPU-1d2e3f4a...), CPUs 0-7" for the start-up log.
std::string DescribeSlot(const SlotPlan& slot);

enum class GpuDriverMode {
  kNvidia,  // Docker's "nvidia" device driver (nvidia-container-toolkit's runtime hook)
  kCdi,     // Container Device Interface: Docker >= 25 with CDI enabled, podman
};

// The slot's GPUs as engine device requests; empty for a CPU-only slot. GPUs
// are named by UUID, never by index: indexes can change order across reboots
// or driver updates, and two slots must never end up swapping GPUs.
std::vector<DeviceRequest> DeviceRequestsFor(const SlotPlan& slot, GpuDriverMode mode);

// NVIDIA_VISIBLE_DEVICES for the slot's containers: the UUIDs comma-joined,
// or "void" for a CPU-only slot. Why set it at all: CUDA images bake in
// NVIDIA_VISIBLE_DEVICES=all, and on hosts whose default runtime is the nvidia
// runtime that alone hands a container every GPU, whatever device requests
// say. The runtime treats "void" like an unset variable (no GPUs, no driver
// libraries), the same as plain runc; naming the slot's own UUIDs keeps that
// path to the slot's GPUs only.
std::string NvidiaVisibleDevices(const SlotPlan& slot);

// Codabench's .env GPU_DEVICE (contract §6) as CDI requests, what the Python
// worker sends with USE_GPU=True. "" reads as the default "nvidia.com/gpu=all";
// a comma-separated list names several devices. InvalidInput for an entry
// that is not a CDI name ("vendor/class=device").
Result<std::vector<DeviceRequest>> DeviceRequestsFromGpuDevice(const std::string& gpu_device);

// The admin's options for one slot. A slot with GPUs replaces any device
// requests in `base` and pins NVIDIA_VISIBLE_DEVICES to them. A CPU-only slot
// keeps `base`'s requests: a worker that itself runs without GPU access
// discovers none, yet may be told by GPU_DEVICE what the daemon's host has;
// only when there are none at all is NVIDIA_VISIBLE_DEVICES=void set (in
// `env`, replacing any earlier value). The slot's cpuset, when it has one,
// replaces base's.
ContainerOptions ApplySlot(ContainerOptions base, const SlotPlan& slot, GpuDriverMode mode);

}  // namespace cw
