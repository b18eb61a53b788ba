// The engine-facing side of a slot: device requests, the environment, and
// the admin's container options made slot-specific.
#include <algorithm>
#include <cctype>

#include "config/config.h"
#include "gpu/slots.h"
#include "gpu/text.h"

namespace cw {
namespace {

using gpu_text::Join;
using gpu_text::Split;
using gpu_text::Trim;

// Only a GPU the driver gave no UUID falls back to its index.
std::string GpuId(const GpuInfo& g) { return g.uuid.empty() ? std::to_string(g.index) : g.uuid; }

bool CdiChars(std::string_view s, std::string_view extra) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

// The CDI spec's "vendor/class=name", e.g. nvidia.com/gpu=0, nvidia.com/gpu=all.
bool IsCdiName(std::string_view s) {
  std::size_t slash = s.find('/');
  std::size_t eq = s.find('=');
  if (slash == std::string_view::npos || eq == std::string_view::npos || eq < slash) return false;
  return CdiChars(s.substr(0, slash), "-_.") &&
         CdiChars(s.substr(slash + 1, eq - slash - 1), "-_") && CdiChars(s.substr(eq + 1), "-_.:");
}

}  // namespace

std::vector<DeviceRequest> DeviceRequestsFor(const SlotPlan& slot, GpuDriverMode mode) {
  if (slot.gpus.empty()) return {};
  DeviceRequest req;
  for (const GpuInfo& g : slot.gpus) {
    req.device_ids.push_back(mode == GpuDriverMode::kCdi ? "nvidia.com/gpu=" + GpuId(g) : GpuId(g));
  }
  if (mode == GpuDriverMode::kCdi) {
    req.driver = "cdi";
  } else {
    req.driver = "nvidia";
    req.capabilities = {{"gpu"}};
  }
  return {req};
}

std::string NvidiaVisibleDevices(const SlotPlan& slot) {
  if (slot.gpus.empty()) return "void";
  std::vector<std::string> ids;
  for (const GpuInfo& g : slot.gpus) ids.push_back(GpuId(g));
  return Join(ids, ",");
}

Result<std::vector<DeviceRequest>> DeviceRequestsFromGpuDevice(const std::string& gpu_device) {
  std::string_view value = Trim(gpu_device);
  if (value.empty()) value = kDefaultGpuDevice;
  DeviceRequest req;
  req.driver = "cdi";
  for (std::string_view raw : Split(value, ',')) {
    std::string_view name = Trim(raw);
    if (name.empty()) {
      return InvalidInput("GPU_DEVICE \"" + gpu_device +
                          "\" has an empty entry; separate CDI device names with single commas");
    }
    if (!IsCdiName(name)) {
      // The usual slip is a bare index or UUID, as `--gpus device=` takes.
      std::string hint =
          name.find('/') == std::string_view::npos && name.find('=') == std::string_view::npos
              ? " (write it as nvidia.com/gpu=" + std::string(name) + ")"
              : " (e.g. nvidia.com/gpu=0 or nvidia.com/gpu=all)";
      return InvalidInput("GPU_DEVICE \"" + gpu_device + "\": \"" + std::string(name) +
                          "\" is not a CDI device name" + hint);
    }
    if (std::find(req.device_ids.begin(), req.device_ids.end(), name) == req.device_ids.end()) {
      req.device_ids.emplace_back(name);
    }
  }
  return std::vector<DeviceRequest>{req};
}

ContainerOptions ApplySlot(ContainerOptions base, const SlotPlan& slot, GpuDriverMode mode) {
  if (!slot.gpus.empty()) base.device_requests = DeviceRequestsFor(slot, mode);
  if (!slot.gpus.empty() || base.device_requests.empty()) {
    constexpr std::string_view kKey = "NVIDIA_VISIBLE_DEVICES=";
    std::erase_if(base.env, [&](const std::string& e) { return e.starts_with(kKey); });
    base.env.push_back(std::string(kKey) + NvidiaVisibleDevices(slot));
  }
  if (!slot.cpuset.empty()) base.cpuset_cpus = slot.cpuset;
  return base;
}

}  // namespace cw
