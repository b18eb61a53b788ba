// What a slot's GPUs did while a job's programs ran, as the pipeline sees it:
// an interface, so JobRunner knows nothing of NVML (gpu/gpu_sampler.h is the
// real one; tests pass a fake). A job asks for figures over a window of time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace cw {

// Over one window, for the slot's GPUs together. Either figure is absent
// when no sample of it landed in the window (a window shorter than the
// sampling interval, a driver that does not report it).
struct GpuUsage {
  // The highest memory in use on the slot's GPUs, summed over them, at one
  // sample. NVML's "used": what the processes on them hold, plus what the
  // driver reserves (a few hundred MiB on recent drivers).
  std::optional<std::uint64_t> peak_memory_bytes;
  // Percent of time a kernel ran, as NVML reports it, averaged over every
  // sample of every GPU of the slot.
  std::optional<double> mean_utilization_percent;
};

class GpuWindow {
 public:
  virtual ~GpuWindow() = default;  // a window never finished is dropped
  // The figures from the window's start until now; ends the window. Never
  // waits on the driver (the sampler's own thread is the only one that asks
  // it), so a wedged GPU cannot hold up a job.
  virtual GpuUsage Finish() = 0;
};

// Thread-safe: slot threads open windows while the sampler fills them.
class GpuUsageMeter {
 public:
  virtual ~GpuUsageMeter() = default;
  virtual std::unique_ptr<GpuWindow> Begin() = 0;
  // "GPU 0, 1": which GPUs the figures are of, for the job's log line.
  virtual std::string Describe() const = 0;
};

// "peak memory 3.2 GiB, utilisation 87% on average" (what of it is known;
// empty when nothing is).
std::string DescribeGpuUsage(const GpuUsage& usage);

}  // namespace cw
