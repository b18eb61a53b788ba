#include "worker/slot_environments.h"

#include <spdlog/spdlog.h>

#include "common/hostname.h"
#include "common/log.h"
#include "common/units.h"
#include "gpu/container_options.h"
#include "job/job_filesystem.h"
#include "job/job_folder.h"
#include "job/network_holders.h"
#include "job/spare_job_folders.h"
#include "sandbox/sandbox_image.h"
#include "worker/status_socket.h"

namespace cw {

JobEnvironment BaseJobEnvironment(const WorkerConfig& config, const std::filesystem::path& base_dir,
                                  const std::filesystem::path& host_dir) {
  JobEnvironment env;
  env.base_dir = base_dir;
  env.host_dir = host_dir;
  env.hostname = Hostname();
  env.limits = JobLimitsFromConfig(config);
  env.container.network_disabled = config.network_disabled;
  env.container.network = config.container_network;
  ChooseOutputLimit(env, config.container_socket);  // says in the log which way
  return env;
}

JobEnvironment QueueJobEnvironment(const WorkerConfig& config, const std::string& nodename,
                                   ContainerEngine& engine, metrics::WorkerMetrics* metrics) {
  JobEnvironment env = BaseJobEnvironment(config, config.base_directory, config.host_directory);
  env.keep_job_dir = config.ignore_cleanup;
  env.defer_cleanup = true;  // the slot acks first, then removes containers and folder
  env.labels["org.codabench.node"] = nodename;
  env.jobs_subfolder = NodeFolderName(nodename);
  if (config.max_image_store_gb > 0) {
    env.images = std::make_shared<ImageBudget>(engine, GbToBytes(config.max_image_store_gb),
                                               config.base_directory / "image-use.json",
                                               /*now_unix=*/nullptr,
                                               config.container_engine == "podman");
    if (metrics) {
      env.images->set_on_measured(
          [metrics](long long bytes) { metrics->ImageStoreBytes(static_cast<double>(bytes)); });
    }
  }
  // Pulls and downloads go to the log at info: an admin watching a 20 GB pull
  // sees it move every 5 s, and a transfer done within 2 s says nothing.
  env.progress.write = [](const std::string& line) {
    const LogFields& job = CurrentLogFields();
    if (job.submission < 0) {
      spdlog::info("{}", line);
    } else {
      spdlog::info("submission {} ({}): {}", job.submission, job.stage, line);
    }
  };
  env.rewrite_url = [config](const std::string& url) { return RewriteUrl(config, url); };
  return env;
}

void PrepareEngine(JobEnvironment& env, ContainerEngine& engine) {
  Result<std::string> image = EnsureSandboxImage(engine);
  if (image.ok()) {
    env.sandbox_image = *image;
  } else {
    spdlog::error("cannot load the worker's own image into the engine ({}): programs start "
                  "without network namespaces made ahead",
                  image.status().message());
  }
}


Status CheckGpuRequestsKept(const std::string& image, const std::vector<DeviceRequest>& requests,
                            const std::map<std::string, std::string>& labels,
                            ContainerEngine& engine) {
  if (requests.empty() || image.empty()) return Status::Ok();
  ContainerSpec probe;
  probe.image = image;
  probe.entrypoint = {"/sandbox"};
  probe.labels = labels;
  probe.network_disabled = true;
  probe.device_requests = requests;
  Result<std::string> id = engine.Create(probe);
  if (!id.ok()) {
    spdlog::warn("could not check that the engine keeps GPU requests ({})",
                 id.status().message());
    return Status::Ok();
  }
  Result<ContainerState> state = engine.Inspect(*id, /*with_size=*/false);
  if (Status removed = engine.Remove(*id, /*force=*/true); !removed.ok()) {
    spdlog::warn("could not remove the GPU check's container {} ({})", id->substr(0, 12),
                 removed.message());
  }
  if (!state.ok()) {
    spdlog::warn("could not check that the engine keeps GPU requests ({})",
                 state.status().message());
    return Status::Ok();
  }
  if (state->device_requests != 0) return Status::Ok();
  return InvalidInput(
      "the container engine drops GPU requests: a container made with the programs' "
      "HostConfig.DeviceRequests (USE_GPU, GPU_DEVICE, GPUS_PER_SLOT or GPU_MAP) came back "
      "without them, so every program would run without its GPUs. Podman before 5 does this "
      "through its Docker API (Codabench's guide asks for Podman 5.4.2 or later, with the "
      "NVIDIA CDI specs generated); use such a Podman, or Docker, on GPU workers");
}

std::vector<JobEnvironment> SlotEnvironments(const JobEnvironment& base,
                                             const std::vector<WorkerSlot>& slots,
                                             const GpuFigures& gpu_figures, bool network_holders,
                                             ContainerEngine& engine, const std::string& nodename) {
  std::vector<std::string> networks;
  bool podman = false;
  for (const WorkerSlot& slot : slots) {
    networks.push_back(
        EnsureProgramNetwork(slot.options, nodename, static_cast<int>(networks.size()), engine));
    podman = podman || slot.options.podman;
  }
  // Podman's slots each have a network, kept apart by a firewall that does
  // not hold on every host: their holders also refuse the routes.
  std::vector<std::vector<std::string>> prohibit(slots.size());
  if (podman && network_holders) prohibit = OtherSlotsSubnets(networks, engine);
  std::vector<JobEnvironment> envs;
  for (const WorkerSlot& slot : slots) {
    const std::size_t i = envs.size();
    JobEnvironment env = base;
    env.container = slot.options;
    env.container.network = networks[i];
    for (const auto& [k, v] : slot.labels) env.labels[k] = v;
    if (i < gpu_figures.meters.size()) env.gpu_usage = gpu_figures.meters[i];
    if (network_holders && !slot.options.network_disabled && !base.sandbox_image.empty()) {
      NetworkHolderOptions holders;
      holders.image = base.sandbox_image;
      holders.network = env.container.network;
      // Not the job containers' node label: what lists a node's containers
      // (an admin's `docker ps --filter`, a revoke) sees only jobs.
      holders.labels = {{kLabelHolderNode, nodename}};
      holders.security_opt = ContainerSecurityOptions(slot.options);
      holders.prohibit = prohibit[i];
      env.network_holders = std::make_shared<NetworkHolders>(engine, std::move(holders));
      env.network_holders->Prepare();
    }
    if (env.limits.job_filesystem && env.limits.max_output_bytes > 0) {
      env.spare_folders = std::make_shared<SpareJobFolders>(JobsFolder(env), env.limits);
      env.spare_folders->Prepare();
    }
    envs.push_back(std::move(env));
  }
  return envs;
}

}  // namespace cw
