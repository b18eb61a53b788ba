#include "doctor/doctor_checks.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include "broker/broker_url.h"
#include "common/files.h"
#include "engine/oci_runtime.h"
#include "gpu/container_options.h"
#include "gpu/text.h"
#include "job/network_holders.h"
#include "sandbox/sandbox_image.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

using Level = DoctorCheck::Level;

DoctorCheck Check(std::string name, Level level, std::string detail, std::string fix = {}) {
  return DoctorCheck{std::move(name), level, std::move(detail), std::move(fix)};
}

struct ProbeResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together, the first 4 KiB
};

// Runs one short-lived container and removes it, whatever happens.
Result<ProbeResult> RunProbe(ContainerEngine& engine, ContainerSpec spec) {
  spec.labels["org.codabench.worker"] = "codabench-worker";
  spec.labels["org.codabench.kind"] = "doctor";
  spec.name = "codabench-doctor-" + RandomHex(4);
  spec.network_disabled = true;
  CW_ASSIGN_OR_RETURN(std::string id, engine.Create(spec));
  ProbeResult result;
  std::mutex mu;
  Status streamed = engine.StartAndStream(
      id,
      [&](StreamKind, std::string_view chunk) {
        std::lock_guard<std::mutex> lock(mu);
        std::size_t room = 4096 - std::min<std::size_t>(4096, result.output.size());
        result.output.append(chunk.substr(0, room));
      },
      {});
  Result<int> code = streamed.ok() ? engine.Wait(id, std::chrono::seconds(60))
                                   : Result<int>(streamed);
  (void)engine.Remove(id, true);
  if (!code.ok()) return code.status();
  result.exit_code = *code;
  return result;
}

int CountGpuLines(const std::string& text) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.rfind("GPU ", 0) == 0;
  return n;
}

std::string DriverFix(const WorkerConfig& config) {
  if (config.gpu_driver == "nvidia") {
    return "install the NVIDIA Container Toolkit on the engine's host and restart the engine "
           "(nvidia-ctk runtime configure --runtime=docker; systemctl restart docker), or use "
           "CDI with GPU_DRIVER=cdi";
  }
  // Slots name GPUs by UUID: recent toolkits put both index and UUID names in
  // the specs, older ones only indexes.
  return "generate the CDI specs on the engine's host with UUID names (nvidia-ctk cdi generate "
         "--output=/etc/cdi/nvidia.yaml; toolkits before index+uuid naming need "
         "--device-name-strategy=uuid), turn CDI on for Docker 25-27 (\"features\": {\"cdi\": "
         "true} in daemon.json), or use the NVIDIA Container Toolkit's --gpus way with "
         "GPU_DRIVER=nvidia";
}

// The GPU runtime's verdict on `probe`, run with slot 0's GPUs.
DoctorCheck GpuProbeVerdict(const WorkerConfig& config, const Result<ProbeResult>& probe,
                            int want, bool cdi) {
  if (!probe.ok()) {
    return Check("gpu runtime", Level::kFail,
                 "a container with slot 0's GPUs did not start: " + probe.status().message(),
                 DriverFix(config));
  }
  if (probe->exit_code != 0) {
    return Check("gpu runtime", Level::kFail,
                 "nvidia-smi -L in a container with slot 0's GPUs exited with " +
                     std::to_string(probe->exit_code) + ": " + gpu_text::FirstLine(probe->output),
                 DriverFix(config));
  }
  const int seen = CountGpuLines(probe->output);
  if (want > 0 && seen != want) {
    return Check("gpu runtime", Level::kFail,
                 "slot 0 owns " + std::to_string(want) + " GPU(s) but its container sees " +
                     std::to_string(seen) + ": " + gpu_text::FirstLine(probe->output),
                 "the engine's default runtime may hand out every GPU: check "
                 "NVIDIA_VISIBLE_DEVICES handling and the runtime's config");
  }
  return Check("gpu runtime", Level::kOk,
               "slot 0's container sees " + std::to_string(seen) + " GPU(s) through " +
                   (cdi ? "CDI" : "the nvidia driver") + ": " + gpu_text::FirstLine(probe->output));
}

// Whether the engine sees HOST_DIRECTORY as the folder this process wrote
// `marker_name` (holding `token`) into; adds to the check's line.
void ProbeHostDirectory(DoctorRun& run, const std::string& marker_name, const std::string& token,
                        DoctorCheck& check) {
  const WorkerConfig& config = run.config;
  ContainerSpec spec;
  spec.image = run.options.image;
  spec.cmd = {"cat", "/codabench-doctor/" + marker_name};
  spec.mounts = {{config.host_directory.string(), "/codabench-doctor", true}};
  auto probe = RunProbe(*run.deps.engine, spec);
  if (probe.ok() && probe->exit_code == 0 && probe->output == token) {
    check.detail += "; the engine sees the same folder";
    return;
  }
  check.level = Level::kFail;
  check.detail += "; but the engine's " + config.host_directory.string() + " is not this folder" +
                  (probe.ok() ? "" : " (" + probe.status().message() + ")");
  check.fix = "HOST_DIRECTORY must be the folder's path on the engine's host, mounted at "
              "/codabench in the worker's container (-v HOST_DIRECTORY:/codabench)";
}

std::string FormatGb(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
  return text;
}

}  // namespace

const std::vector<DoctorCheckFn>& DoctorChecks() {
  static const std::vector<DoctorCheckFn> checks = {
      CheckEngine,      CheckEngineLimits, CheckImages,  CheckGpus,    CheckSlots,
      CheckGpuRuntime,  CheckHostDirectory, CheckDiskBudgets, CheckOutputLimit, CheckSandbox,
      CheckRuntime,     CheckBroker,
  };
  return checks;
}

std::vector<DoctorCheck> CheckEngine(DoctorRun& run) {
  ContainerEngine& engine = *run.deps.engine;
  auto version = engine.Version();
  if (!version.ok()) {
    return {Check("engine", Level::kFail, version.status().message(),
                  "start the engine (systemctl start docker); a worker in a container needs the "
                  "socket mounted (-v /var/run/docker.sock:/var/run/docker.sock); check "
                  "CONTAINER_SOCKET")};
  }
  run.found.engine_ok = true;
  std::string detail = *version + " at " + run.options.socket;
  if (auto info = engine.Info(); info.ok()) {
    run.found.info = *info;
    detail += "; its host: " + std::to_string(info->ncpu) + " CPUs, " +
              FormatGiB(static_cast<std::uint64_t>(std::max(0LL, info->mem_total_bytes))) +
              " memory";
  }
  return {Check("engine", Level::kOk, detail)};
}

// Limits the engine cannot enforce (rootless on cgroups v1): a warning, as
// in the worker's start-up log and each job's log. No line when it can.
std::vector<DoctorCheck> CheckEngineLimits(DoctorRun& run) {
  const std::string unenforced = UnenforcedLimits(run.found.info);
  if (!run.found.engine_ok || unenforced.empty()) return {};
  return {Check("limits", Level::kWarn, unenforced,
                "rootless Podman on cgroups v1 ignores every resource limit: run the engine as "
                "root, or boot the host with cgroups v2 (systemd.unified_cgroup_hierarchy=1)")};
}

// The registry, and whether the image is already here.
std::vector<DoctorCheck> CheckImages(DoctorRun& run) {
  if (!run.found.engine_ok) return {Check("images", Level::kSkip, "no engine")};
  ContainerEngine& engine = *run.deps.engine;
  const std::string& image = run.options.image;
  auto here = engine.ImageExists(image);
  run.found.image_here = here.ok() && *here;
  std::string where = run.found.image_here ? " (on this machine)" : " (not on this machine yet)";
  Status reg = engine.CheckRegistry(image);
  if (reg.ok()) return {Check("images", Level::kOk, "the registry of " + image + " answers" + where)};
  return {Check("images", Level::kWarn,
                "cannot reach the registry of " + image + where + ": " + reg.message(),
                "jobs can use only images already on this machine (docker images); check DNS, "
                "the proxy of the engine, or docker login")};
}

std::vector<DoctorCheck> CheckGpus(DoctorRun& run) {
  const WorkerConfig& config = run.config;
  auto& gpus = run.found.gpus;
  if (run.deps.discover_gpus) gpus = run.deps.discover_gpus();
  const bool wants = WantsGpus(config);
  const bool splits = !config.gpus_per_slot.empty() || !config.gpu_map.empty();
  if (!gpus.ok()) {
    return {Check("gpus", wants ? Level::kFail : Level::kWarn, gpus.status().message(),
                  "run nvidia-smi on this host; a driver/library version mismatch needs the "
                  "driver reinstalled or a reboot")};
  }
  if (gpus->empty() && !wants) {
    return {Check("gpus", Level::kOk, "no GPUs (a CPU worker: USE_GPU is off)")};
  }
  if (gpus->empty()) {
    return {Check("gpus", splits ? Level::kFail : Level::kWarn,
                  "the worker sees no GPUs" +
                      std::string(splits ? ", so GPUS_PER_SLOT / GPU_MAP cannot be met"
                                         : "; every job asks the engine for GPU_DEVICE=" +
                                               config.gpu_device),
                  "give the worker itself GPU access (compose: a device reservation with "
                  "capabilities [gpu, utility]; docker run --gpus all) or run it on the host")};
  }
  // One line per GPU: an 8-GPU host's list does not fit on one.
  std::string detail = std::to_string(gpus->size()) + (gpus->size() == 1 ? " GPU" : " GPUs") +
                       (wants ? "" : "; USE_GPU is off: jobs get none");
  for (const GpuInfo& g : *gpus) detail += "\n" + DescribeGpu(g, /*full_uuid=*/true);
  return {Check("gpus", Level::kOk, detail)};
}

std::vector<DoctorCheck> CheckSlots(DoctorRun& run) {
  std::vector<std::string> notes;
  auto& slots = run.found.slots;
  slots = PlanWorkerSlots(run.config, run.found.gpus, run.found.info.ncpu, &notes);
  if (!slots.ok()) {
    return {Check("slots", Level::kFail, slots.status().message(),
                  "fix the setting named above (README: GPU workers)")};
  }
  std::string detail = std::to_string(slots->size()) + (slots->size() == 1 ? " slot" : " slots");
  for (const WorkerSlot& s : *slots) detail += "\n" + DescribeSlot(s.plan);
  for (const std::string& n : notes) detail += "\nnote: " + n;
  std::vector<DoctorCheck> out = {Check("slots", Level::kOk, detail)};
  // The host's IPC namespace is shared by every job on it: with two slots,
  // two participants' programs can read each other's shared memory.
  if (slots->size() > 1 && (*slots)[0].options.ipc_mode == "host") {
    out.push_back(Check("ipc", Level::kWarn,
                        "CONTAINER_IPC=host with " + std::to_string(slots->size()) +
                            " slots: concurrent jobs share the host's shared memory and can "
                            "read each other's",
                        "unset CONTAINER_IPC and give each job its own /dev/shm with "
                        "CONTAINER_SHM_SIZE (e.g. 8g)"));
  }
  return out;
}

// Can the engine hand slot 0's GPUs to a container?
std::vector<DoctorCheck> CheckGpuRuntime(DoctorRun& run) {
  const auto& slots = run.found.slots;
  if (!WantsGpus(run.config) || !slots.ok() || slots->empty() ||
      (*slots)[0].options.device_requests.empty()) {
    return {};
  }
  const WorkerSlot& slot0 = (*slots)[0];
  const bool cdi = slot0.options.device_requests[0].driver == "cdi";
  if (!run.found.engine_ok) return {Check("gpu runtime", Level::kSkip, "no engine")};
  if (!run.found.image_here) {
    const EngineInfo& info = run.found.info;
    std::string hint;
    if (cdi && info.cdi_spec_dirs.empty()) {
      hint = "; the engine lists no CDI spec folders (Docker 25+ with CDI on does)";
    }
    bool nvidia_runtime =
        std::find(info.runtimes.begin(), info.runtimes.end(), "nvidia") != info.runtimes.end();
    if (!cdi && !nvidia_runtime) hint = "; the engine has no nvidia runtime registered";
    return {Check("gpu runtime", hint.empty() ? Level::kSkip : Level::kWarn,
                  "not tried: " + run.options.image + " is not on this machine" + hint,
                  "pull it, or pass --image with an image that is here, to run nvidia-smi in a "
                  "container with slot 0's GPUs")};
  }
  ContainerSpec spec;
  spec.image = run.options.image;
  spec.cmd = {"nvidia-smi", "-L"};
  spec.env = slot0.options.env;
  spec.device_requests = slot0.options.device_requests;
  auto probe = RunProbe(*run.deps.engine, spec);
  return {GpuProbeVerdict(run.config, probe, static_cast<int>(slot0.plan.gpus.size()), cdi)};
}

// HOST_DIRECTORY: writable, room, and the same folder for the engine.
std::vector<DoctorCheck> CheckHostDirectory(DoctorRun& run) {
  const WorkerConfig& config = run.config;
  const fs::path& base = config.base_directory;
  std::error_code ec;
  fs::create_directories(base, ec);
  const std::string marker_name = ".codabench-doctor-" + RandomHex(6);
  const fs::path marker = base / marker_name;
  const std::string token = RandomHex(8);
  bool writable = false;
  {
    std::ofstream f(marker);
    f << token;
    writable = f.good();
  }
  std::string seen_as = config.base_directory == config.host_directory
                            ? ""
                            : " (HOST_DIRECTORY " + config.host_directory.string() + ")";
  DoctorCheck check;
  if (!writable) {
    check = Check("host directory", Level::kFail, "cannot write to " + base.string() + seen_as,
                  "create it and let the worker's user write there: sudo mkdir -p " +
                      base.string() + " && sudo chown $(id -u):$(id -g) " + base.string());
  } else {
    check = Check("host directory", Level::kOk, base.string() + seen_as + " is writable");
    if (run.deps.disk_space) {
      if (auto space = run.deps.disk_space(base); space.ok()) {
        check.detail +=
            ", " + FormatGiB(space->free_bytes) + " free of " + FormatGiB(space->total_bytes);
        if (space->free_bytes < run.options.min_free_bytes) {
          check.level = Level::kWarn;
          check.fix = "submissions, their outputs and the bundle cache (MAX_CACHE_DIR_SIZE_GB) "
                      "need room: free some, or point HOST_DIRECTORY at a larger disk";
        }
      }
    }
    if (run.found.engine_ok && run.found.image_here) {
      ProbeHostDirectory(run, marker_name, token, check);
    }
  }
  fs::remove(marker, ec);
  return {check};
}

// What fills the disks: the engine's images and the bundle cache.
std::vector<DoctorCheck> CheckDiskBudgets(DoctorRun& run) {
  if (!run.deps.engine) return {};
  const WorkerConfig& config = run.config;
  std::string detail;
  Level level = Level::kOk;
  std::string fix;
  auto store = run.deps.engine->ImageStoreBytes();
  if (!store.ok()) {
    detail = "image store: unknown (" + store.status().message() + ")";
  } else {
    detail = "image store " + FormatGb(static_cast<double>(*store));
    if (config.max_image_store_gb > 0) {
      detail += " of MAX_IMAGE_STORE_GB=" + FormatGb(config.max_image_store_gb * 1e9);
      if (static_cast<double>(*store) > config.max_image_store_gb * 1e9) {
        detail += " (over: the next job's cleanup removes least recently used competition "
                  "images)";
      }
    } else {
      level = Level::kWarn;
      detail += ", no budget";
      fix = "set MAX_IMAGE_STORE_GB so competition images never fill the engine's disk";
    }
  }
  detail += "; cache " + FormatGb(static_cast<double>(TreeSize(config.base_directory / "cache"))) +
            " of MAX_CACHE_DIR_SIZE_GB=" + FormatGb(config.max_cache_dir_size_gb * 1e9);
  return {Check("disk budgets", level, detail, fix)};
}

// How MAX_OUTPUT_SIZE_GB will be held: a warning when only the walk can.
std::vector<DoctorCheck> CheckOutputLimit(DoctorRun& run) {
  const WorkerConfig& config = run.config;
  if (config.max_output_size_gb <= 0) {
    return {Check("output limit", Level::kWarn, "MAX_OUTPUT_SIZE_GB=0: programs may fill the disk",
                  "set MAX_OUTPUT_SIZE_GB")};
  }
  OutputLimitChoice c =
      run.deps.output_limit
          ? run.deps.output_limit(config)
          : ProbeJobFilesystems(config.base_directory / "jobs",
                                config.base_directory == config.host_directory,
                                config.container_socket);
  if (c.job_filesystem) return {Check("output limit", Level::kOk, c.how)};
  return {Check("output limit", Level::kWarn, c.how,
                "run the worker as root on the engine's host (not in a container) with "
                "mkfs.ext4 and loop devices, so each job gets a filesystem of its own "
                "(README \"Disk\")")};
}

// What keeps jobs apart: the worker's own image (network holders, folder
// removal) and the network programs sit on. Loads and makes them, as the
// worker does at start.
std::vector<DoctorCheck> CheckSandbox(DoctorRun& run) {
  if (!run.found.engine_ok) return {Check("sandbox", Level::kSkip, "no engine")};
  ContainerEngine& engine = *run.deps.engine;
  Result<std::string> image = EnsureSandboxImage(engine);
  if (!image.ok()) {
    return {Check("sandbox", Level::kFail,
                  "cannot load the worker's own image: " + image.status().message(),
                  "programs would start without network namespaces made ahead, and a plain "
                  "user's worker could not remove what they leave; check the engine's log")};
  }
  auto options = ContainerOptionsFromConfig(run.config);
  if (!options.ok() || options->network_disabled) {
    return {Check("sandbox", Level::kOk, *image + " loaded; programs have no network")};
  }
  if (options->podman && options->network == kDefaultContainerNetwork) {
    // Named after the worker's node, which the worker knows and the doctor
    // does not: made at start, not here.
    return {Check("sandbox", Level::kOk,
                  *image + " loaded; under podman each slot gets an isolated network of its own "
                           "at start (README, COMPETITION_CONTAINER_NETWORK)")};
  }
  std::string network = EnsureProgramNetwork(*options, "doctor", 0, engine);
  if (network.empty()) {
    return {Check("sandbox", Level::kWarn,
                  *image + " loaded; programs run on the engine's default network, where "
                           "programs of other jobs can reach them",
                  "leave COMPETITION_CONTAINER_NETWORK unset (codabench-jobs) or name a network "
                  "whose containers cannot reach each other")};
  }
  return {Check("sandbox", Level::kOk,
                *image + " loaded; programs run on network " + network +
                    (network == options->network && network != kDefaultContainerNetwork
                         ? " (the admin's own: its options are the admin's)"
                         : " (no traffic between its containers)"))};
}

// CONTAINER_RUNTIME: the engine knows it, serves the GPUs under it, and a
// container of the worker's own image starts and exits 0 under it.
std::vector<DoctorCheck> CheckRuntime(DoctorRun& run) {
  const std::string& runtime = run.config.container_runtime;
  const EngineInfo& info = run.found.info;
  if (runtime.empty()) {
    return {Check("runtime", Level::kOk,
                  "programs run under " + DescribeRuntime(info, runtime) +
                      " (CONTAINER_RUNTIME is not set)")};
  }
  if (!run.found.engine_ok) return {Check("runtime", Level::kSkip, "no engine")};
  const std::string fix_register =
      "register it with the engine (Docker: \"runtimes\" in /etc/docker/daemon.json, then "
      "reload dockerd; gVisor: scripts/start-gvisor), or unset CONTAINER_RUNTIME";
  if (Status known = CheckRuntimeKnown(info, runtime); !known.ok()) {
    return {Check("runtime", Level::kFail, known.message(), fix_register)};
  }
  if (WantsGpus(run.config)) {
    if (Status gpus = CheckRuntimeServesGpus(info, runtime); !gpus.ok()) {
      return {Check("runtime", Level::kFail, gpus.message(),
                    "README \"Sandboxed runtime (gVisor)\" says which GPU setups it serves")};
    }
  }
  const std::string described = DescribeRuntime(info, runtime);
  Result<std::string> image = EnsureSandboxImage(*run.deps.engine);
  if (!image.ok()) {
    return {Check("runtime", Level::kSkip,
                  described + "; not tried: the worker's own image did not load")};
  }
  ContainerSpec spec;
  spec.image = *image;
  spec.entrypoint = {"/sandbox"};
  spec.cmd = {"size", "/etc"};  // reads a folder every container has, and exits 0
  spec.runtime = runtime;
  spec.cap_drop = {"ALL"};
  spec.security_opt = {"no-new-privileges"};
  auto probe = RunProbe(*run.deps.engine, spec);
  if (!probe.ok() || probe->exit_code != 0) {
    std::string why = probe.ok() ? "exit code " + std::to_string(probe->exit_code) + ": " +
                                       std::string(gpu_text::Trim(probe->output))
                                 : probe.status().message();
    return {Check("runtime", Level::kFail,
                  "a container of " + *image + " did not run under " + described + ": " + why,
                  "see the engine's log (journalctl -u docker); gVisor on a VM whose network it "
                  "cannot drive needs \"runtimeArgs\": [\"--network=host\"] (README)")};
  }
  return {Check("runtime", Level::kOk,
                "programs run under " + described + "; a container started and exited 0 under it")};
}

std::vector<DoctorCheck> CheckBroker(DoctorRun& run) {
  const WorkerConfig& config = run.config;
  if (config.broker_url.empty()) {
    return {Check("broker", Level::kFail, "BROKER_URL is not set",
                  "copy the queue's broker URL from the Codabench site (your queues page) into "
                  ".env: BROKER_URL=pyamqp://user:password@host:5672/vhost")};
  }
  auto address = ParseBrokerUrl(config.broker_url, config.broker_use_ssl);
  if (!address.ok()) {
    return {Check("broker", Level::kFail, address.status().message(), "fix BROKER_URL in .env")};
  }
  if (!run.deps.probe_broker) return {Check("broker", Level::kSkip, "not checked")};
  auto probe = run.deps.probe_broker(*address);
  if (!probe.ok()) {
    return {Check("broker", Level::kFail, address->Redacted() + ": " + probe.status().message(),
                  "check the user, password and vhost in BROKER_URL (the site's queue page has "
                  "them), BROKER_USE_SSL, and that the broker's port is open from here")};
  }
  std::string queue = probe->queue_exists
                          ? "queue compute-worker: " + std::to_string(probe->messages) +
                                " waiting, " + std::to_string(probe->consumers) + " worker(s)"
                          : "queue compute-worker not declared yet (the first worker does)";
  return {Check("broker", Level::kOk, "logged in to " + address->Redacted() + "; " + queue)};
}

}  // namespace cw
