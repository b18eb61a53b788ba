// GPU lists and a fake NVML for the gpu part's tests. Tests only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gpu/gpu_info.h"
#include "gpu/nvml.h"

namespace cw::testing {

inline constexpr std::uint64_t kH100Bytes = 85520809984ull;  // what NVML reports for an H100 80GB

inline std::string FakeUuid(int i) {
  return "GPU-" + std::to_string(i) + std::string(7, 'a') + "-1111-2222-3333-444455556666";
}

// An 8 x H100 box, as NVML lists it.
inline std::vector<GpuInfo> EightH100() {
  std::vector<GpuInfo> gpus;
  for (int i = 0; i < 8; ++i) gpus.push_back({i, FakeUuid(i), "NVIDIA H100 80GB HBM3", kH100Bytes});
  return gpus;
}

// A workstation with two different cards.
inline std::vector<GpuInfo> TwoGpuBox() {
  return {
      {0, "GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000", "NVIDIA GeForce RTX 4090", 25757220864ull},
      {1, "GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111", "NVIDIA RTX A6000", 51527024640ull}};
}

// What the fake NVML answers; one at a time (the functions are plain C
// function pointers, so they read this global).
struct FakeNvml {
  std::vector<GpuInfo> gpus;
  NvmlReturn init_rc = kNvmlSuccess;
  NvmlReturn count_rc = kNvmlSuccess;
  NvmlReturn handle_rc = kNvmlSuccess;
  NvmlReturn uuid_rc = kNvmlSuccess;
  NvmlReturn memory_rc = kNvmlSuccess;
  // What the usage queries answer, by GPU index (0 used, 0% when not set);
  // a GPU in `usage_rc` fails both queries with that code.
  std::map<int, std::uint64_t> used_bytes;
  std::map<int, unsigned int> utilization;
  std::map<int, NvmlReturn> usage_rc;
  NvmlReturn utilization_rc = kNvmlSuccess;
  // The sampler's thread reads these while a test watches or steers it.
  std::atomic<int> memory_calls{0};
  std::atomic<int> utilization_calls{0};
  std::atomic<bool> hang{false};  // the memory query does not return while set
  int inits = 0;
  int shutdowns = 0;

  static FakeNvml*& Current() {
    static FakeNvml* current = nullptr;
    return current;
  }

  // The table DiscoverGpus gets; this object must outlive its use.
  NvmlLibrary Library() {
    Current() = this;
    NvmlLibrary lib;
    lib.init = [] {
      ++Current()->inits;
      return Current()->init_rc;
    };
    lib.shutdown = [] {
      ++Current()->shutdowns;
      return kNvmlSuccess;
    };
    lib.get_count = [](unsigned int* n) {
      *n = static_cast<unsigned int>(Current()->gpus.size());
      return Current()->count_rc;
    };
    lib.get_handle = [](unsigned int i, NvmlDevice* d) {
      *d = reinterpret_cast<NvmlDevice>(static_cast<std::uintptr_t>(i + 1));
      return Current()->handle_rc;
    };
    lib.get_uuid = [](NvmlDevice d, char* buf, unsigned int size) {
      Copy(At(d).uuid, buf, size);
      return Current()->uuid_rc;
    };
    lib.get_name = [](NvmlDevice d, char* buf, unsigned int size) {
      Copy(At(d).name, buf, size);
      return kNvmlSuccess;
    };
    lib.get_memory = [](NvmlDevice d, NvmlMemory* m) {
      FakeNvml& f = *Current();
      ++f.memory_calls;
      while (f.hang) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const int i = At(d).index;
      if (f.usage_rc.count(i)) return f.usage_rc[i];
      m->total = At(d).memory_total_bytes;
      m->used = f.used_bytes.count(i) ? f.used_bytes[i] : 0;
      m->free = m->total - m->used;
      return f.memory_rc;
    };
    lib.get_utilization = [](NvmlDevice d, NvmlUtilization* u) {
      FakeNvml& f = *Current();
      const int i = At(d).index;
      NvmlReturn rc = f.utilization_rc;
      if (f.usage_rc.count(i)) {
        rc = f.usage_rc[i];
      } else {
        u->gpu = f.utilization.count(i) ? f.utilization[i] : 0;
        u->memory = 0;
      }
      ++f.utilization_calls;  // last: after it, the call no longer reads `f`
      return rc;
    };
    lib.error_string = [](NvmlReturn rc) -> const char* {
      switch (rc) {
        case 9:
          return "Driver Not Loaded";
        case 15:
          return "GPU is lost";
        case 18:
          return "Driver/library version mismatch";
        default:
          return "Unknown Error";
      }
    };
    return lib;
  }

 private:
  static const GpuInfo& At(NvmlDevice d) {
    return Current()->gpus[reinterpret_cast<std::uintptr_t>(d) - 1];
  }
  static void Copy(const std::string& s, char* buf, unsigned int size) {
    std::memset(buf, 0, size);
    std::memcpy(buf, s.data(), std::min<std::size_t>(s.size(), size - 1));
  }
};

}  // namespace cw::testing
