#include "gpu/container_options.h"

#include "gpu/slots.h"

namespace cw {

Result<ContainerOptions> ContainerOptionsFromConfig(const WorkerConfig& config) {
  ContainerOptions c;
  c.network_disabled = config.network_disabled;
  c.http_proxy = config.container_http_proxy;
  c.https_proxy = config.container_https_proxy;
  c.podman = config.container_engine == "podman";
  if (config.use_gpu) {
    auto requests = DeviceRequestsFromGpuDevice(config.gpu_device);
    if (!requests.ok()) return requests.status().Prefixed("GPU_DEVICE");
    c.device_requests = *requests;
  }
  return c;
}

}  // namespace cw
