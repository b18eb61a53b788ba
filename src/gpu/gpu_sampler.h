// GPU use, sampled: one background thread asks NVML about every GPU each
// interval (memory in use, utilisation), keeps the latest reading of each
// (the per-slot gauges) and folds every reading into the windows jobs have
// open (per-job figures, job/gpu_usage.h).
//
// Threads: NVML is called only by Start, the sampler's thread and SampleNow,
// one round at a time; everything else (Latest, meters, windows) reads what
// the rounds left, under a mutex held for no NVML call. So a wedged driver
// stalls the figures, never a job.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "gpu/nvml.h"
#include "job/gpu_usage.h"

namespace cw {

// One GPU at one round; a figure the driver did not give is absent.
struct GpuReading {
  int index = 0;     // NVML's index
  std::string uuid;  // "GPU-8f6c..."
  std::optional<std::uint64_t> memory_used_bytes;
  std::optional<std::uint64_t> memory_total_bytes;
  std::optional<double> utilization_percent;
};

struct GpuSamplerOptions {
  std::chrono::milliseconds interval{1000};
  // Called on the sampling thread after each round with every GPU's reading
  // (the metrics' gauges). Must not block. Optional.
  std::function<void(const std::vector<GpuReading>&)> on_sample;
  // Told when a GPU's figures start or stop failing, and why. Optional.
  std::function<void(const std::string&)> log;
  // False: no thread; the caller runs the rounds with SampleNow (tests).
  bool background = true;
  // How long the destructor waits for the thread to stop; past that (a
  // driver call that hangs) the thread is left behind, detached.
  std::chrono::milliseconds stop_wait{2000};
};

class GpuSampler {
 public:
  // Starts NVML and finds every GPU by its UUID. Unavailable when NVML cannot
  // start, lists no GPU, or this driver answers neither the memory nor the
  // utilisation query: the worker then runs without GPU figures.
  static Result<std::unique_ptr<GpuSampler>> Start(NvmlLibrary nvml,
                                                   GpuSamplerOptions options = {});
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // One round now, on the caller's thread.
  void SampleNow();

  // Every GPU's last reading (index order); no figures before the first round.
  std::vector<GpuReading> Latest() const;

  // A meter over these GPUs (UUIDs, as discovery names them). Ones NVML does
  // not list are left out, with a log line; null when none is left.
  std::shared_ptr<GpuUsageMeter> MeterFor(const std::vector<std::string>& uuids);

  struct State;  // shared with the thread, meters and windows

 private:
  explicit GpuSampler(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace cw
