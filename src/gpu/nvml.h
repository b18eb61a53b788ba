// The few NVML calls discovery and the usage sampler need, as a table of
// function pointers filled by dlopen/dlsym at run time. The worker must build
// without CUDA and start on machines without a driver, so nothing here links
// against NVML.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace cw {

struct GpuInfo;

// ABI stand-ins for NVML's own types: nvmlReturn_t is a C enum (int-sized),
// nvmlDevice_t an opaque pointer, nvmlMemory_t three unsigned long longs.
using NvmlReturn = int;
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
// nvmlUtilization_t: percent of the last sample period a kernel ran (gpu),
// and memory was read or written (memory).
struct NvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};
inline constexpr NvmlReturn kNvmlSuccess = 0;

struct NvmlLibrary {
  NvmlReturn (*init)() = nullptr;                                 // nvmlInit_v2
  NvmlReturn (*shutdown)() = nullptr;                             // nvmlShutdown
  NvmlReturn (*get_count)(unsigned int*) = nullptr;               // nvmlDeviceGetCount_v2
  NvmlReturn (*get_handle)(unsigned int, NvmlDevice*) = nullptr;  // nvmlDeviceGetHandleByIndex_v2
  NvmlReturn (*get_uuid)(NvmlDevice, char*, unsigned int) = nullptr;  // nvmlDeviceGetUUID
  NvmlReturn (*get_name)(NvmlDevice, char*, unsigned int) = nullptr;  // nvmlDeviceGetName
  NvmlReturn (*get_memory)(NvmlDevice, NvmlMemory*) = nullptr;        // nvmlDeviceGetMemoryInfo
  const char* (*error_string)(NvmlReturn) = nullptr;                  // nvmlErrorString
  // nvmlDeviceGetUtilizationRates. Optional: discovery does without it, and
  // the sampler reports memory alone when a driver lacks it.
  NvmlReturn (*get_utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  // Keeps the shared library loaded while the pointers are in use; null for fakes.
  std::shared_ptr<void> handle;
};

// NotFound when the library is not installed (the normal CPU-machine case);
// Unavailable when it is there but lacks a symbol (a driver too old).
using NvmlLoader = std::function<Result<NvmlLibrary>()>;
Result<NvmlLibrary> LoadNvml(const std::string& soname = "libnvidia-ml.so.1");

// NVML's words for `rc` and its number: "GPU is lost (NVML error 15)".
std::string NvmlErrorText(const NvmlLibrary& nvml, NvmlReturn rc);

// Init, list every device, shutdown. Unavailable with NVML's own words
// ("Driver/library version mismatch") on any failure.
Result<std::vector<GpuInfo>> QueryNvml(const NvmlLibrary& nvml);

}  // namespace cw
