#include "gpu/worker_slots.h"

#include <functional>

#include "gpu/container_options.h"
#include "gpu/text.h"

namespace cw {
namespace {

constexpr int kMaxSlots = 256;

Result<int> ParseCount(const std::string& text, const char* what, bool allow_auto) {
  if (allow_auto && gpu_text::Lower(text) == "auto") return 0;
  const int n = gpu_text::IsDigits(text) && text.size() <= 3 ? std::stoi(text) : 0;
  if (n < 1 || n > kMaxSlots) {
    return InvalidInput(std::string(what) + " must be " + (allow_auto ? "auto or " : "") +
                        "a number from 1 to " + std::to_string(kMaxSlots) + ", got '" + text +
                        "'");
  }
  return n;
}

// The slots of a plan, each with the options `options_for` gives it and its
// labels: the slot's index, and its GPUs when it owns some.
std::vector<WorkerSlot> MakeSlots(std::vector<SlotPlan> plans,
                                  const std::function<ContainerOptions(const SlotPlan&)>& options_for) {
  std::vector<WorkerSlot> out;
  for (SlotPlan& p : plans) {
    WorkerSlot s;
    s.options = options_for(p);
    s.labels[kLabelSlot] = std::to_string(p.index);
    if (!p.gpus.empty()) s.labels[kLabelGpus] = NvidiaVisibleDevices(p);
    s.plan = std::move(p);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

bool WantsGpus(const WorkerConfig& config) {
  return config.use_gpu || !config.gpus_per_slot.empty() || !config.gpu_map.empty();
}

Result<std::vector<WorkerSlot>> PlanWorkerSlots(const WorkerConfig& config,
                                                const Result<std::vector<GpuInfo>>& gpus,
                                                int cpu_count, std::vector<std::string>* notes) {
  std::vector<std::string> local_notes;
  std::vector<std::string>& log = notes ? *notes : local_notes;
  CW_ASSIGN_OR_RETURN(ContainerOptions base, ContainerOptionsFromConfig(config));
  CW_ASSIGN_OR_RETURN(GpuDriverMode driver, GpuDriverFromConfig(config));

  SlotRequest req;
  bool slots_set = !config.worker_slots.empty();
  if (slots_set) {
    CW_ASSIGN_OR_RETURN(req.slots, ParseCount(config.worker_slots, "WORKER_SLOTS (--slots)", true));
  }
  if (!config.gpus_per_slot.empty()) {
    CW_ASSIGN_OR_RETURN(req.gpus_per_slot,
                        ParseCount(config.gpus_per_slot, "GPUS_PER_SLOT (--gpus-per-slot)", false));
  }
  req.gpu_map = config.gpu_map;
  req.split_cpus = config.split_cpus.empty() || ParseBool(config.split_cpus);
  const bool splits_gpus = req.gpus_per_slot > 0 || !req.gpu_map.empty();

  // Without GPUs to own, slots are CPU slots that share the base options.
  auto cpu_slots = [&]() -> Result<std::vector<WorkerSlot>> {
    SlotRequest cpu = req;
    cpu.gpus_per_slot = 0;
    cpu.gpu_map.clear();
    cpu.slots = std::max(cpu.slots, 1);
    CW_ASSIGN_OR_RETURN(std::vector<SlotPlan> plans, PlanSlots({}, cpu, cpu_count, &log));
    return MakeSlots(std::move(plans), [&](const SlotPlan& p) {
      ContainerOptions o = base;
      if (!p.cpuset.empty()) o.cpuset_cpus = p.cpuset;
      return o;
    });
  };

  if (!WantsGpus(config)) return cpu_slots();
  if (!gpus.ok()) {
    return Unavailable("GPUs were asked for (USE_GPU, GPUS_PER_SLOT or GPU_MAP) but looking for "
                       "them failed: " +
                       gpus.status().message() +
                       ". Fix the NVIDIA driver, or set USE_GPU=False to run without GPUs.");
  }
  if (gpus->empty()) {
    if (splits_gpus) {
      return InvalidInput(
          "GPUS_PER_SLOT or GPU_MAP is set but this worker sees no GPUs (neither NVML nor "
          "nvidia-smi found any): give the worker itself GPU access (compose: a device "
          "reservation for all GPUs; docker run: --gpus all) or run it on the host");
    }
    log.push_back("no GPUs seen by the worker itself: every slot's jobs ask the engine for " +
                  config.gpu_device +
                  " (give the worker GPU access to let each slot own its GPUs)");
    return cpu_slots();
  }
  if (!splits_gpus && config.gpu_device != kDefaultGpuDevice) {
    log.push_back("GPU_DEVICE=" + config.gpu_device + ": every slot's jobs ask for exactly that" +
                  (req.slots > 1 ? " (the slots share those GPUs)" : ""));
    return cpu_slots();
  }
  if (!slots_set && !splits_gpus) req.slots = 1;  // all GPUs to one job, as the Python worker
  CW_ASSIGN_OR_RETURN(std::vector<SlotPlan> plans, PlanSlots(*gpus, req, cpu_count, &log));
  return MakeSlots(std::move(plans),
                   [&](const SlotPlan& p) { return ApplySlot(base, p, driver); });
}

}  // namespace cw
