#include "job/gpu_usage.h"

#include <cstdio>

namespace cw {

std::string DescribeGpuUsage(const GpuUsage& usage) {
  std::string out;
  if (usage.peak_memory_bytes) {
    out = "peak memory " + std::to_string(*usage.peak_memory_bytes >> 20) + " MiB";
  }
  if (usage.mean_utilization_percent) {
    char text[48];
    std::snprintf(text, sizeof text, "utilisation %.0f%% on average",
                  *usage.mean_utilization_percent);
    out += (out.empty() ? "" : ", ") + std::string(text);
  }
  return out;
}

}  // namespace cw
