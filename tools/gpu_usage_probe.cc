// codabench-gpu-usage: the worker's GPU sampler (gpu/gpu_sampler.h) on its
// own, for N seconds, as JSON: every round's reading of every GPU, and the
// figures a job would get over the whole run (per GPU and for all together).
// scripts/gpu-usage-check runs it beside `nvidia-smi --loop-ms` on a GPU
// machine, so the two can be compared. Needs only libc (NVML is loaded at run
// time).
//   codabench-gpu-usage [SECONDS (5)] [INTERVAL_MS (1000)] [NVML_SONAME]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gpu/gpu_sampler.h"
#include "gpu/nvml.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json Figures(const cw::GpuUsage& u) {
  json out = json::object();
  out["peak_memory_bytes"] = u.peak_memory_bytes ? json(*u.peak_memory_bytes) : json(nullptr);
  out["mean_utilization_percent"] =
      u.mean_utilization_percent ? json(*u.mean_utilization_percent) : json(nullptr);
  return out;
}

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 5;
  const long interval_ms = argc > 2 ? std::atol(argv[2]) : 1000;
  const std::string soname = argc > 3 ? argv[3] : "libnvidia-ml.so.1";
  if (seconds <= 0 || interval_ms <= 0) {
    std::fprintf(stderr, "usage: codabench-gpu-usage [SECONDS] [INTERVAL_MS] [NVML_SONAME]\n");
    return 2;
  }
  json out;
  out["seconds"] = seconds;
  out["interval_ms"] = interval_ms;
  auto nvml = cw::LoadNvml(soname);
  if (!nvml.ok()) {
    out["error"] = nvml.status().ToString();
    std::printf("%s\n", out.dump(2).c_str());
    return 1;
  }
  out["has_utilization_query"] = nvml->get_utilization != nullptr;

  std::mutex mu;
  json rounds = json::array();
  std::vector<std::string> log;
  const auto t0 = Clock::now();
  cw::GpuSamplerOptions options;
  options.interval = std::chrono::milliseconds(interval_ms);
  options.on_sample = [&](const std::vector<cw::GpuReading>& readings) {
    json round;
    round["t"] = std::chrono::duration<double>(Clock::now() - t0).count();
    // Wall-clock time too, to line rounds up with nvidia-smi's timestamps.
    round["unix_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    json gpus = json::array();
    for (const cw::GpuReading& r : readings) {
      gpus.push_back({{"index", r.index},
                      {"uuid", r.uuid},
                      {"memory_used_bytes", OrNull(r.memory_used_bytes)},
                      {"memory_total_bytes", OrNull(r.memory_total_bytes)},
                      {"utilization_percent", OrNull(r.utilization_percent)}});
    }
    round["gpus"] = gpus;
    std::lock_guard<std::mutex> lock(mu);
    rounds.push_back(std::move(round));
  };
  options.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(line);
  };
  auto sampler = cw::GpuSampler::Start(*nvml, options);
  if (!sampler.ok()) {
    out["error"] = sampler.status().ToString();
    std::printf("%s\n", out.dump(2).c_str());
    return 1;
  }
  // The windows a job on one GPU, and one on all of them, would get.
  std::vector<std::string> uuids;
  for (const cw::GpuReading& r : (*sampler)->Latest()) uuids.push_back(r.uuid);
  std::vector<std::unique_ptr<cw::GpuWindow>> per_gpu;
  for (const std::string& uuid : uuids) per_gpu.push_back((*sampler)->MeterFor({uuid})->Begin());
  auto all = (*sampler)->MeterFor(uuids);
  auto all_window = all->Begin();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  json windows = json::object();
  for (std::size_t i = 0; i < uuids.size(); ++i) windows[uuids[i]] = Figures(per_gpu[i]->Finish());
  out["windows"] = windows;
  out["all"] = Figures(all_window->Finish());
  out["all"]["gpus"] = all->Describe();
  sampler->reset();
  {
    std::lock_guard<std::mutex> lock(mu);  // a round left behind by a hung driver call
    out["rounds"] = rounds;
    out["log"] = log;
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
