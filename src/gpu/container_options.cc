#include "gpu/container_options.h"

#include <charconv>
#include <cmath>

#include "common/units.h"
#include "gpu/slot_options.h"
#include "gpu/text.h"

namespace cw {
namespace {

Status Setting(const Status& st, const char* env, const char* option) {
  return st.Prefixed(std::string(env) + " (" + option + ")");
}

Result<double> ParseCpus(const std::string& text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || v <= 0) {
    return InvalidInput("must be a number of CPUs above 0 (e.g. 4 or 2.5), got '" + text + "'");
  }
  return v;
}

// The nvidia driver's view of GPU_DEVICE: "nvidia.com/gpu=0,nvidia.com/gpu=1"
// -> ids 0 and 1; "nvidia.com/gpu=all" -> every GPU.
DeviceRequest NvidiaRequestFrom(const DeviceRequest& cdi) {
  DeviceRequest req;
  req.driver = "nvidia";
  req.capabilities = {{"gpu"}};
  for (const std::string& name : cdi.device_ids) {
    std::string id = name.substr(name.find('=') + 1);
    if (id == "all") {
      req.device_ids.clear();
      req.count = -1;
      return req;
    }
    req.device_ids.push_back(id);
  }
  return req;
}

}  // namespace

Result<GpuDriverMode> GpuDriverFromConfig(const WorkerConfig& config) {
  if (config.gpu_driver.empty() || config.gpu_driver == "cdi") return GpuDriverMode::kCdi;
  if (config.gpu_driver == "nvidia") return GpuDriverMode::kNvidia;
  return InvalidInput("GPU_DRIVER (--gpu-driver) must be cdi or nvidia, got '" +
                      config.gpu_driver + "'");
}

Result<ContainerOptions> ContainerOptionsFromConfig(const WorkerConfig& config) {
  ContainerOptions c;
  c.network_disabled = config.network_disabled;
  c.network = config.container_network;
  c.http_proxy = config.container_http_proxy;
  c.https_proxy = config.container_https_proxy;
  c.podman = config.container_engine == "podman";
  c.pids_limit = config.container_pids_limit;
  c.runtime = config.container_runtime;
  // Podman's Docker API adds an nproc limit of its own to any ulimit it is
  // given, which its runc then refuses ("error setting rlimit type 6"):
  // under podman, containers.conf's default_ulimits sets open files.
  c.nofile_limit = c.podman ? 0 : config.container_nofile_limit;
  CW_ASSIGN_OR_RETURN(GpuDriverMode driver, GpuDriverFromConfig(config));
  if (config.use_gpu) {
    auto requests = DeviceRequestsFromGpuDevice(config.gpu_device);
    if (!requests.ok()) return requests.status().Prefixed("GPU_DEVICE");
    c.device_requests = *requests;
    if (driver == GpuDriverMode::kNvidia) {
      for (DeviceRequest& r : c.device_requests) r = NvidiaRequestFrom(r);
    }
  }
  if (!config.container_ipc.empty()) {
    static const char* kModes[] = {"host", "private", "shareable", "none"};
    bool known = false;
    for (const char* m : kModes) known = known || config.container_ipc == m;
    if (!known) {
      return InvalidInput("CONTAINER_IPC (--ipc) must be host, private, shareable or none, got '" +
                          config.container_ipc + "'");
    }
    c.ipc_mode = config.container_ipc;
  }
  if (!config.container_shm_size.empty()) {
    auto v = ParseBytes(config.container_shm_size);
    if (!v.ok()) return Setting(v.status(), "CONTAINER_SHM_SIZE", "--shm-size");
    c.shm_size_bytes = *v;
  }
  if (!config.container_memory.empty()) {
    auto v = ParseBytes(config.container_memory);
    if (!v.ok()) return Setting(v.status(), "CONTAINER_MEMORY", "--memory");
    // The engine refuses limits under 6 MiB with a less helpful message.
    if (*v < (6LL << 20)) {
      return InvalidInput("CONTAINER_MEMORY (--memory) must be at least 6m, got '" +
                          config.container_memory + "'");
    }
    c.memory_bytes = *v;
  }
  if (!config.container_cpus.empty()) {
    auto v = ParseCpus(config.container_cpus);
    if (!v.ok()) return Setting(v.status(), "CONTAINER_CPUS", "--cpus");
    c.nano_cpus = *v;
  }
  if (!config.extra_mounts.empty()) {
    for (std::string_view spec : gpu_text::Split(config.extra_mounts, ',')) {
      spec = gpu_text::Trim(spec);
      if (spec.empty()) continue;
      auto m = ParseMountSpec(spec);
      if (!m.ok()) return Setting(m.status(), "EXTRA_MOUNTS", "--mount");
      c.extra_mounts.push_back(*m);
    }
  }
  return c;
}

JobLimits JobLimitsFromConfig(const WorkerConfig& config) {
  JobLimits limits;
  limits.max_unpacked_bytes = GbToBytes(config.max_unpacked_size_gb);
  limits.max_unpacked_files = static_cast<std::uint64_t>(config.max_unpacked_files);
  limits.min_free_bytes = GbToBytes(config.min_free_disk_gb);
  limits.max_output_bytes = GbToBytes(config.max_output_size_gb);
  return limits;
}

}  // namespace cw
