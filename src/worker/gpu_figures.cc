#include "worker/gpu_figures.h"

#include <spdlog/spdlog.h>

#include <map>
#include <string>

namespace cw {

GpuFigures StartGpuFigures(const std::vector<WorkerSlot>& slots, metrics::WorkerMetrics* metrics,
                           const NvmlLoader& load, GpuSamplerOptions options) {
  GpuFigures figures;
  figures.meters.resize(slots.size());
  std::map<std::string, std::string> slot_of;  // UUID -> slot number
  for (const WorkerSlot& slot : slots) {
    for (const GpuInfo& gpu : slot.plan.gpus) {
      if (!gpu.uuid.empty()) slot_of[gpu.uuid] = std::to_string(slot.plan.index);
    }
  }
  // CPU slots, or GPUs asked for by GPU_DEVICE alone (none discovered): no
  // GPU of ours to measure, so NVML is not even loaded.
  if (slot_of.empty()) return figures;
  auto nvml = load ? load() : LoadNvml();
  if (!nvml.ok()) {
    spdlog::warn("no GPU use figures (metrics, job metadata): {}", nvml.status().message());
    return figures;
  }
  metrics::GpuMetrics* gauges = metrics ? &metrics->EnableGpus() : nullptr;
  if (gauges) {
    options.on_sample = [gauges, slot_of](const std::vector<GpuReading>& readings) {
      for (const GpuReading& r : readings) {
        auto it = slot_of.find(r.uuid);
        if (it == slot_of.end()) continue;  // no slot's: not the worker's to show
        auto as_double = [](const auto& v) -> std::optional<double> {
          if (!v) return std::nullopt;
          return static_cast<double>(*v);
        };
        gauges->Reading({it->second, r.index, r.uuid, r.utilization_percent,
                         as_double(r.memory_used_bytes), as_double(r.memory_total_bytes)});
      }
    };
  }
  options.log = [](const std::string& line) { spdlog::warn("GPU figures: {}", line); };
  const auto interval = options.interval;
  auto sampler = GpuSampler::Start(*nvml, std::move(options));
  if (!sampler.ok()) {
    spdlog::warn("no GPU use figures (metrics, job metadata): {}", sampler.status().message());
    return figures;
  }
  figures.sampler = std::move(*sampler);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    std::vector<std::string> uuids;
    for (const GpuInfo& gpu : slots[i].plan.gpus) uuids.push_back(gpu.uuid);
    if (!uuids.empty()) figures.meters[i] = figures.sampler->MeterFor(uuids);
  }
  spdlog::info("GPU use of the slots' {} GPU(s) is sampled every {} ms", slot_of.size(),
               interval.count());
  return figures;
}

void RecordJobGpuUsage(metrics::WorkerMetrics* metrics, const std::string& stage,
                       const GpuUsage& usage) {
  if (!metrics || !metrics->gpus()) return;
  std::optional<double> peak;
  if (usage.peak_memory_bytes) peak = static_cast<double>(*usage.peak_memory_bytes);
  metrics->gpus()->JobUsage(stage, peak, usage.mean_utilization_percent);
}

}  // namespace cw
