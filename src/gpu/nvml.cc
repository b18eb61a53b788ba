#include "gpu/nvml.h"

#include <dlfcn.h>

#include <algorithm>

#include "gpu/gpu_info.h"

namespace cw {
namespace {

// NVML_DEVICE_UUID_V2_BUFFER_SIZE and NVML_DEVICE_NAME_V2_BUFFER_SIZE are both
// 96; a larger buffer is always accepted.
constexpr unsigned int kNvmlStringBuffer = 128;

template <typename Fn>
bool Bind(void* lib, const char* symbol, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(lib, symbol));
  return fn != nullptr;
}

// NVML writes a NUL-terminated string; never trust it to, though.
std::string FromBuffer(const char* buf, std::size_t size) {
  return std::string(buf, std::find(buf, buf + size, '\0'));
}

}  // namespace

std::string NvmlErrorText(const NvmlLibrary& nvml, NvmlReturn rc) {
  const char* text = nvml.error_string ? nvml.error_string(rc) : nullptr;
  std::string out = text ? text : "unknown error";
  return out + " (NVML error " + std::to_string(rc) + ")";
}

Result<NvmlLibrary> LoadNvml(const std::string& soname) {
  // RTLD_LOCAL: NVML's symbols must not leak into or clash with anything else
  // the process loads later.
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    return NotFound(soname + " could not be loaded: " + (why ? why : "unknown reason"));
  }
  NvmlLibrary nvml;
  nvml.handle = std::shared_ptr<void>(lib, [](void* h) { dlclose(h); });
  struct Symbol {
    const char* name;
    bool bound;
  };
  const Symbol symbols[] = {
      {"nvmlInit_v2", Bind(lib, "nvmlInit_v2", nvml.init)},
      {"nvmlShutdown", Bind(lib, "nvmlShutdown", nvml.shutdown)},
      {"nvmlDeviceGetCount_v2", Bind(lib, "nvmlDeviceGetCount_v2", nvml.get_count)},
      {"nvmlDeviceGetHandleByIndex_v2",
       Bind(lib, "nvmlDeviceGetHandleByIndex_v2", nvml.get_handle)},
      {"nvmlDeviceGetUUID", Bind(lib, "nvmlDeviceGetUUID", nvml.get_uuid)},
      {"nvmlDeviceGetName", Bind(lib, "nvmlDeviceGetName", nvml.get_name)},
      {"nvmlDeviceGetMemoryInfo", Bind(lib, "nvmlDeviceGetMemoryInfo", nvml.get_memory)},
      {"nvmlErrorString", Bind(lib, "nvmlErrorString", nvml.error_string)},
  };
  for (const Symbol& s : symbols) {
    if (!s.bound) {
      return Unavailable(soname + " has no " + s.name +
                         " (an NVIDIA driver older than NVML v2; update the driver)");
    }
  }
  // Optional (usage figures only): a driver without it leaves the pointer null.
  Bind(lib, "nvmlDeviceGetUtilizationRates", nvml.get_utilization);
  return nvml;
}

Result<std::vector<GpuInfo>> QueryNvml(const NvmlLibrary& nvml) {
  if (!nvml.init || !nvml.shutdown || !nvml.get_count || !nvml.get_handle || !nvml.get_uuid ||
      !nvml.get_name || !nvml.get_memory) {
    return Internal("the NVML function table is incomplete");
  }
  if (NvmlReturn rc = nvml.init(); rc != kNvmlSuccess) {
    return Unavailable("NVML could not start: " + NvmlErrorText(nvml, rc));
  }
  // Every successful init must be paired with a shutdown, or the driver keeps
  // NVML's state for this process alive.
  struct Shutdown {
    const NvmlLibrary& nvml;
    ~Shutdown() { nvml.shutdown(); }
  } shutdown{nvml};

  unsigned int count = 0;
  if (NvmlReturn rc = nvml.get_count(&count); rc != kNvmlSuccess) {
    return Unavailable("NVML could not count the GPUs: " + NvmlErrorText(nvml, rc));
  }
  std::vector<GpuInfo> gpus;
  for (unsigned int i = 0; i < count; ++i) {
    const std::string which = "GPU " + std::to_string(i);
    NvmlDevice device = nullptr;
    if (NvmlReturn rc = nvml.get_handle(i, &device); rc != kNvmlSuccess) {
      return Unavailable("NVML could not open " + which + ": " + NvmlErrorText(nvml, rc));
    }
    char buf[kNvmlStringBuffer] = {};
    // The UUID is what slots pin GPUs by; without it a slot could get the
    // wrong GPU after a re-enumeration, so it is not optional.
    if (NvmlReturn rc = nvml.get_uuid(device, buf, sizeof buf); rc != kNvmlSuccess) {
      return Unavailable("NVML could not read the UUID of " + which + ": " +
                         NvmlErrorText(nvml, rc));
    }
    GpuInfo gpu;
    gpu.index = static_cast<int>(i);
    gpu.uuid = FromBuffer(buf, sizeof buf);
    std::fill(std::begin(buf), std::end(buf), '\0');
    if (nvml.get_name(device, buf, sizeof buf) == kNvmlSuccess) {
      gpu.name = FromBuffer(buf, sizeof buf);
    }
    // Memory is for the admin's eyes only; an unsupported query is no reason
    // to lose the GPU.
    NvmlMemory memory{};
    if (nvml.get_memory(device, &memory) == kNvmlSuccess) gpu.memory_total_bytes = memory.total;
    gpus.push_back(std::move(gpu));
  }
  return gpus;
}

}  // namespace cw
