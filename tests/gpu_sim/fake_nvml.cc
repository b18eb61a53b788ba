// A stand-in libnvidia-ml.so for machines without a GPU: the C functions the
// worker binds with dlsym (gpu/nvml.h), answering for two GPUs with steady
// figures, so codabench-gpu-usage is tested through a real dlopen. Built
// with CW_FAKE_NVML_NO_UTILIZATION it lacks nvmlDeviceGetUtilizationRates,
// as an old driver does.
//   GPU 0: 1 GiB of 16 in use, 30% busy; GPU 1: 2 GiB of 16, 60% busy.
#include <cstdint>
#include <cstdio>

namespace {

constexpr unsigned int kCount = 2;
constexpr unsigned long long kGiB = 1ull << 30;

struct Memory {
  unsigned long long total, free, used;
};
struct Utilization {
  unsigned int gpu, memory;
};

// A device handle is its index + 1 (never null).
unsigned int Index(void* device) {
  return static_cast<unsigned int>(reinterpret_cast<std::uintptr_t>(device) - 1);
}

}  // namespace

extern "C" {

int nvmlInit_v2() { return 0; }
int nvmlShutdown() { return 0; }
int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = kCount;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index >= kCount) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = reinterpret_cast<void*>(static_cast<std::uintptr_t>(index) + 1);
  return 0;
}
int nvmlDeviceGetUUID(void* device, char* buf, unsigned int size) {
  std::snprintf(buf, size, "GPU-fa4e0000-0000-0000-0000-00000000000%u", Index(device));
  return 0;
}
int nvmlDeviceGetName(void*, char* buf, unsigned int size) {
  std::snprintf(buf, size, "Fake GPU");
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* device, Memory* memory) {
  memory->total = 16 * kGiB;
  memory->used = (Index(device) + 1) * kGiB;
  memory->free = memory->total - memory->used;
  return 0;
}
#ifndef CW_FAKE_NVML_NO_UTILIZATION
int nvmlDeviceGetUtilizationRates(void* device, Utilization* utilization) {
  utilization->gpu = 30 * (Index(device) + 1);
  utilization->memory = 0;
  return 0;
}
#endif
const char* nvmlErrorString(int) { return "fake error"; }

}  // extern "C"
