#include "engine/oci_runtime.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cw {
namespace {

const EngineInfo::Runtime* Details(const EngineInfo& info, const std::string& runtime) {
  auto it = info.runtime_details.find(runtime);
  return it == info.runtime_details.end() ? nullptr : &it->second;
}

}  // namespace

Status CheckRuntimeKnown(const EngineInfo& info, const std::string& runtime) {
  if (runtime.empty() || info.runtimes.empty()) return Status::Ok();
  if (std::find(info.runtimes.begin(), info.runtimes.end(), runtime) != info.runtimes.end()) {
    return Status::Ok();
  }
  return InvalidInput("CONTAINER_RUNTIME is '" + runtime +
                      "' but the container engine has no runtime of that name (it has: " +
                      fmt::format("{}", fmt::join(info.runtimes, ", ")) +
                      "). Register it with the engine (Docker: \"runtimes\" in "
                      "/etc/docker/daemon.json, then reload dockerd; for gVisor: "
                      "scripts/start-gvisor), or unset CONTAINER_RUNTIME for the engine's "
                      "default.");
}

bool IsGvisorRuntime(const EngineInfo& info, const std::string& runtime) {
  if (runtime.empty()) return false;
  const EngineInfo::Runtime* rt = Details(info, runtime);
  std::string program = rt && !rt->path.empty() ? rt->path : runtime;
  program = program.substr(program.find_last_of('/') + 1);
  return program == "runsc";
}

Status CheckRuntimeServesGpus(const EngineInfo& info, const std::string& runtime) {
  if (!IsGvisorRuntime(info, runtime)) return Status::Ok();
  const EngineInfo::Runtime* rt = Details(info, runtime);
  if (rt) {
    for (const std::string& a : rt->args) {
      if (a == "--nvproxy" || a == "--nvproxy=true") return Status::Ok();
    }
  }
  return InvalidInput(
      "GPUs are asked for (USE_GPU, GPUS_PER_SLOT or GPU_MAP) but CONTAINER_RUNTIME '" + runtime +
      "' is gVisor without --nvproxy, which gives its programs no GPU. Add \"--nvproxy\" to the "
      "runtime's runtimeArgs in daemon.json (gVisor's NVIDIA support: recent runsc releases, "
      "drivers it knows), or unset CONTAINER_RUNTIME on GPU workers.");
}

std::string DescribeRuntime(const EngineInfo& info, const std::string& runtime) {
  if (runtime.empty()) {
    return "the engine's default (" +
           (info.default_runtime.empty() ? std::string("not named") : info.default_runtime) + ")";
  }
  const EngineInfo::Runtime* rt = Details(info, runtime);
  if (!rt || rt->path.empty()) return runtime;
  std::string command = rt->path;
  for (const std::string& a : rt->args) command += " " + a;
  return runtime + " (" + command + ")";
}

Result<std::string> CheckContainerRuntime(const Result<EngineInfo>& info,
                                          const std::string& runtime, bool gpus) {
  if (!info.ok()) {
    if (runtime.empty()) return std::string("the engine's default");
    return runtime + " (not checked: the engine did not describe its runtimes: " +
           info.status().message() + ")";
  }
  CW_RETURN_IF_ERROR(CheckRuntimeKnown(*info, runtime));
  if (gpus) CW_RETURN_IF_ERROR(CheckRuntimeServesGpus(*info, runtime));
  return DescribeRuntime(*info, runtime);
}

}  // namespace cw
