// codabench-gpu-probe: what the worker's GPU discovery sees on this machine,
// each source on its own (NVML, nvidia-smi) and the two together, plus the
// slot plan for one GPU per slot, as JSON. For checking discovery on a GPU
// machine that has no container engine (and for bug reports). It needs only
// libc: NVML is loaded at run time, nvidia-smi is run as a child.
#include <cstdio>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "gpu/gpu_info.h"
#include "gpu/nvidia_smi.h"
#include "gpu/nvml.h"
#include "gpu/slots.h"

namespace {

using nlohmann::json;

json ToJson(const cw::Result<std::vector<cw::GpuInfo>>& gpus) {
  if (!gpus.ok()) return {{"error", gpus.status().ToString()}};
  json list = json::array();
  for (const cw::GpuInfo& g : *gpus) {
    list.push_back({{"index", g.index},
                    {"uuid", g.uuid},
                    {"name", g.name},
                    {"memory_total_bytes", g.memory_total_bytes}});
  }
  return {{"count", gpus->size()}, {"gpus", list}, {"summary", cw::DescribeGpus(*gpus)}};
}

}  // namespace

int main() {
  json out;
  auto nvml = cw::LoadNvml();
  out["nvml"] = nvml.ok() ? ToJson(cw::QueryNvml(*nvml)) : json{{"error", nvml.status().ToString()}};
  out["nvidia_smi"] = ToJson(cw::QueryNvidiaSmi(cw::RunCommand, std::chrono::seconds(10)));
  std::vector<std::string> log;
  cw::GpuDiscoveryOptions options;
  options.log = [&log](const std::string& line) { log.push_back(line); };
  auto gpus = cw::DiscoverGpus(options);
  out["discover"] = ToJson(gpus);
  out["discover_log"] = log;
  if (gpus.ok()) {
    cw::SlotRequest req;
    req.gpus_per_slot = gpus->empty() ? 0 : 1;
    const int cpus = static_cast<int>(std::thread::hardware_concurrency());
    std::vector<std::string> notes;
    auto plan = cw::PlanSlots(*gpus, req, cpus, &notes);
    json slots = json::array();
    if (plan.ok()) {
      for (const cw::SlotPlan& s : *plan) {
        slots.push_back({{"describe", cw::DescribeSlot(s)},
                         {"nvidia_visible_devices", cw::NvidiaVisibleDevices(s)}});
      }
    }
    out["one_gpu_per_slot"] = plan.ok() ? json{{"slots", slots}, {"notes", notes}}
                                        : json{{"error", plan.status().ToString()}};
  }
  std::printf("%s\n", out.dump(2).c_str());
  return gpus.ok() ? 0 : 1;
}
