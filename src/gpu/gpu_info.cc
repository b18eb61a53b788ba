#include "gpu/gpu_info.h"

#include <algorithm>
#include <cstdio>

#include "gpu/nvidia_smi.h"

namespace cw {
namespace {

std::vector<GpuInfo> SortedByIndex(std::vector<GpuInfo> gpus) {
  std::sort(gpus.begin(), gpus.end(),
            [](const GpuInfo& a, const GpuInfo& b) { return a.index < b.index; });
  return gpus;
}

// Joins reasons quoted from tools, some of which end in a period already.
std::string Sentence(std::string s) {
  if (s.empty() || s.back() != '.') s += '.';
  return s;
}

}  // namespace

std::string FormatGiB(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

std::string DescribeGpu(const GpuInfo& g, bool full_uuid) {
  std::string out = std::to_string(g.index) + " " + (g.name.empty() ? "unnamed GPU" : g.name) + " (";
  if (g.uuid.empty()) {
    out += "no UUID";
  } else {
    // 12 characters ("GPU-" and 8 hex digits) tell GPUs apart in a log line.
    out += !full_uuid && g.uuid.size() > 12 ? g.uuid.substr(0, 12) + "..." : g.uuid;
  }
  out += ", " + (g.memory_total_bytes ? FormatGiB(g.memory_total_bytes) : "memory unknown") + ")";
  return out;
}

Result<std::vector<GpuInfo>> DiscoverGpus(const GpuDiscoveryOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };

  // "" = NVML is simply not installed; otherwise why it failed.
  std::string nvml_failure;
  Result<NvmlLibrary> nvml = options.load_nvml ? options.load_nvml() : LoadNvml();
  if (nvml.ok()) {
    Result<std::vector<GpuInfo>> gpus = QueryNvml(*nvml);
    if (gpus.ok()) return SortedByIndex(std::move(gpus).value());
    nvml_failure = gpus.status().message();
  } else if (nvml.status().code() != Code::kNotFound) {
    nvml_failure = nvml.status().message();
  }
  log("NVML: " + (nvml_failure.empty() ? nvml.status().message() : nvml_failure) +
      "; asking nvidia-smi");

  const CommandRunner& run = options.run_command ? options.run_command : CommandRunner(RunCommand);
  Result<std::vector<GpuInfo>> smi = QueryNvidiaSmi(run, options.nvidia_smi_timeout);
  if (smi.ok()) return SortedByIndex(std::move(smi).value());
  const bool smi_missing = smi.status().code() == Code::kNotFound;
  if (smi_missing && nvml_failure.empty()) {
    log("nvidia-smi: " + smi.status().message() + "; this machine has no NVIDIA GPUs to offer");
    return std::vector<GpuInfo>{};
  }
  return Unavailable(
      "GPU discovery failed. NVML: " +
      Sentence(nvml_failure.empty() ? "not installed" : nvml_failure) +
      " nvidia-smi: " + Sentence(smi_missing ? "not installed" : smi.status().message()) +
      " Check the NVIDIA driver (does nvidia-smi work on this machine?)");
}

std::string DescribeGpus(const std::vector<GpuInfo>& gpus) {
  if (gpus.empty()) return "no GPUs";
  std::string out = std::to_string(gpus.size()) + (gpus.size() == 1 ? " GPU: " : " GPUs: ");
  for (std::size_t i = 0; i < gpus.size(); ++i) {
    if (i > 0) out += "; ";
    // The full UUID is in the slot's log line when it matters.
    out += DescribeGpu(gpus[i]);
  }
  return out;
}

}  // namespace cw
