// GPU figures among the worker's metrics (README "Metrics and health"): what
// each slot's GPUs do now, and what each job's programs made of them. Only a
// worker whose slots own GPUs (and can read them through NVML) has these
// families; on others they do not appear at all.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "metrics/registry.h"

namespace cw::metrics {

// One GPU of one slot at the last sampling round; a figure the driver did
// not give is absent (and shows as NaN, not as a stale value).
struct GpuGauges {
  std::string slot;  // "0"
  int gpu = 0;       // NVML's index
  std::string uuid;
  std::optional<double> utilization_percent;
  std::optional<double> memory_used_bytes;
  std::optional<double> memory_total_bytes;
};

// Thread-safe (the registry is): the sampler's thread sets the gauges while
// slot threads record jobs.
class GpuMetrics {
 public:
  explicit GpuMetrics(Registry& registry);

  void Reading(const GpuGauges& gpu);
  // A job's figures over its programs' run (job/gpu_usage.h); stage:
  // "prediction" or "scoring". An absent figure is not observed.
  void JobUsage(const std::string& stage, std::optional<double> peak_memory_bytes,
                std::optional<double> mean_utilization_percent);

 private:
  Registry& registry_;
  int utilization_, memory_used_, memory_total_, job_peak_memory_, job_utilization_;
};

// Histogram buckets for a job's peak GPU memory: 512 MiB to 256 GiB.
std::vector<double> GpuMemoryBuckets();

}  // namespace cw::metrics
