// Which NVIDIA GPUs this machine has, asked at run time: NVML first (loaded
// with dlopen, so the worker builds and runs on machines without the driver),
// then nvidia-smi. A machine with neither simply has no GPUs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/command.h"
#include "gpu/nvml.h"

namespace cw {

struct GpuInfo {
  int index = 0;                         // NVML / nvidia-smi index (PCI bus order)
  std::string uuid;                      // "GPU-8f6c..."; "" when the driver did not say
  std::string name;                      // "NVIDIA H100 80GB HBM3"
  std::uint64_t memory_total_bytes = 0;  // 0 = unknown
};

struct GpuDiscoveryOptions {
  // Empty = LoadNvml() (dlopen "libnvidia-ml.so.1"). Tests pass a fake.
  NvmlLoader load_nvml;
  // Empty = RunCommand (a real child process). Tests pass a fake.
  CommandRunner run_command;
  // A wedged driver can make nvidia-smi hang for minutes; discovery must not
  // hold up the worker's start for that long.
  std::chrono::milliseconds nvidia_smi_timeout{10000};
  // Told why a source was skipped ("NVML: not installed, asking nvidia-smi"),
  // for debug logs. Optional.
  std::function<void(const std::string&)> log;
};

// The GPUs, sorted by index. An empty list when neither NVML nor nvidia-smi
// is installed (a CPU machine: normal). Unavailable when a GPU stack is there
// but fails (driver/library mismatch, GPU lost...): the message carries each
// source's reason, since silently running CPU-only on a GPU box is worse.
Result<std::vector<GpuInfo>> DiscoverGpus(const GpuDiscoveryOptions& options = {});

// "0 NVIDIA H100 80GB HBM3 (GPU-8f6c1a2b..., 79.6 GiB)"; the whole UUID with
// full_uuid, else its first 12 characters (enough to tell GPUs apart in a log).
std::string DescribeGpu(const GpuInfo& gpu, bool full_uuid = false);

// One line for logs:
// "2 GPUs: 0 NVIDIA H100 80GB HBM3 (GPU-8f6c1a2b..., 79.6 GiB); 1 ...", or "no GPUs".
std::string DescribeGpus(const std::vector<GpuInfo>& gpus);

// "79.6 GiB": memory and disk sizes in the worker's messages.
std::string FormatGiB(std::uint64_t bytes);

}  // namespace cw
