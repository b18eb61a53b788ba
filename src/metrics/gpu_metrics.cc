#include "metrics/gpu_metrics.h"

#include <limits>

namespace cw::metrics {

std::vector<double> GpuMemoryBuckets() {
  std::vector<double> buckets;
  for (double gib = 0.5; gib <= 256; gib *= 2) buckets.push_back(gib * (1ull << 30));
  return buckets;
}

GpuMetrics::GpuMetrics(Registry& registry) : registry_(registry) {
  const std::string p = "codabench_worker_";
  const std::vector<std::string> labels = {"slot", "gpu", "uuid"};
  utilization_ = registry_.Gauge(
      p + "gpu_utilization_percent",
      "Percent of the last sample period a kernel ran on the GPU, by slot and GPU (NVML).", labels);
  memory_used_ = registry_.Gauge(p + "gpu_memory_used_bytes",
                                 "GPU memory in use, by slot and GPU (NVML; includes what the "
                                 "driver reserves).",
                                 labels);
  memory_total_ = registry_.Gauge(p + "gpu_memory_total_bytes",
                                  "GPU memory in all, by slot and GPU (NVML).", labels);
  job_peak_memory_ = registry_.Histogram(
      p + "job_gpu_peak_memory_bytes",
      "Highest GPU memory in use on the slot's GPUs together while a job's programs ran, by "
      "stage.",
      {"stage"}, GpuMemoryBuckets());
  job_utilization_ = registry_.Histogram(
      p + "job_gpu_utilization_percent",
      "Mean utilisation of the slot's GPUs while a job's programs ran, by stage.", {"stage"},
      {1, 5, 10, 25, 50, 75, 90, 100});
}

void GpuMetrics::Reading(const GpuGauges& gpu) {
  const LabelValues labels = {gpu.slot, std::to_string(gpu.gpu), gpu.uuid};
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  registry_.Set(utilization_, labels, gpu.utilization_percent.value_or(unknown));
  registry_.Set(memory_used_, labels, gpu.memory_used_bytes.value_or(unknown));
  registry_.Set(memory_total_, labels, gpu.memory_total_bytes.value_or(unknown));
}

void GpuMetrics::JobUsage(const std::string& stage, std::optional<double> peak_memory_bytes,
                          std::optional<double> mean_utilization_percent) {
  if (peak_memory_bytes) registry_.Observe(job_peak_memory_, {stage}, *peak_memory_bytes);
  if (mean_utilization_percent) {
    registry_.Observe(job_utilization_, {stage}, *mean_utilization_percent);
  }
}

}  // namespace cw::metrics
