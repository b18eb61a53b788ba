// GPU use figures for a queue worker (README "Metrics and health"): one
// sampler for every slot's GPUs, a meter per slot for its jobs, and the
// per-slot gauges when metrics are on. A worker whose slots own no GPU, or
// that cannot load NVML, gets none of it and pays nothing.
#pragma once

#include <memory>
#include <vector>

#include "gpu/gpu_sampler.h"
#include "gpu/nvml.h"
#include "gpu/worker_slots.h"
#include "job/gpu_usage.h"
#include "metrics/worker_metrics.h"

namespace cw {

struct GpuFigures {
  std::unique_ptr<GpuSampler> sampler;  // null: no figures
  // One per slot, in slot order; null for a slot that owns no GPU.
  std::vector<std::shared_ptr<GpuUsageMeter>> meters;
};

// Starts the sampler when some slot owns GPUs known by UUID. `load` empty =
// LoadNvml(). `metrics` (may be null) gets the GPU families and each round's
// readings of the slots' GPUs. Never fails: without NVML the worker runs on,
// without figures, and says why in its log.
GpuFigures StartGpuFigures(const std::vector<WorkerSlot>& slots, metrics::WorkerMetrics* metrics,
                           const NvmlLoader& load = {}, GpuSamplerOptions options = {});

// A job's figures into the metrics' histograms (when it has any).
void RecordJobGpuUsage(metrics::WorkerMetrics* metrics, const std::string& stage,
                       const GpuUsage& usage);

}  // namespace cw
