#include "gpu/worker_slots.h"

#include "gpu/container_options.h"
#include "gpu/text.h"

namespace cw {
namespace {

constexpr int kMaxSlots = 256;
constexpr const char* kDefaultGpuDevice = "nvidia.com/gpu=all";

Result<int> ParseCount(const std::string& text, const char* what, bool allow_auto) {
  if (allow_auto && gpu_text::Lower(text) == "auto") return 0;
  if (!gpu_text::IsDigits(text) || text.size() > 3 || std::stoi(text) < 1 ||
      std::stoi(text) > kMaxSlots) {
    return InvalidInput(std::string(what) + " must be " + (allow_auto ? "auto or " : "") +
                        "a number from 1 to " + std::to_string(kMaxSlots) + ", got '" + text +
                        "'");
  }
  return std::stoi(text);
}

std::vector<WorkerSlot> SharedSlots(const ContainerOptions& base, std::vector<SlotPlan> plans) {
  std::vector<WorkerSlot> out;
  for (SlotPlan& p : plans) {
    WorkerSlot s;
    s.options = base;
    if (!p.cpuset.empty()) s.options.cpuset_cpus = p.cpuset;
    s.labels[kLabelSlot] = std::to_string(p.index);
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
    return SharedSlots(base, std::move(plans));
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
  std::vector<WorkerSlot> out;
  for (SlotPlan& p : plans) {
    WorkerSlot s;
    s.options = ApplySlot(base, p, driver);
    s.labels[kLabelSlot] = std::to_string(p.index);
    std::vector<std::string> ids;
    for (const GpuInfo& g : p.gpus) ids.push_back(g.uuid.empty() ? std::to_string(g.index) : g.uuid);
    if (!ids.empty()) s.labels[kLabelGpus] = gpu_text::Join(ids, ",");
    s.plan = std::move(p);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace cw
