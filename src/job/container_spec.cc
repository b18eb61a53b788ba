#include "job/container_spec.h"

#include "common/files.h"

namespace cw {
namespace fs = std::filesystem;

std::vector<std::string> ContainerSecurityOptions(const ContainerOptions& c) {
  // No program may gain privileges (a set-uid binary in the image or the
  // submission), under podman as under Docker; podman's SELinux labels
  // would also refuse the job's bind mounts.
  std::vector<std::string> out = {"no-new-privileges"};
  if (c.podman) out.push_back("label=disable");
  return out;
}

const std::vector<std::string>& DroppedCapabilities() {
  static const std::vector<std::string> caps = {
      "AUDIT_WRITE", "CHOWN",  "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",   "MKNOD",
      "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"};
  return caps;
}

const char* StageName(bool is_scoring) { return is_scoring ? "scoring" : "prediction"; }

std::string ProgramLabel(ProgramKind kind, bool is_scoring) {
  if (kind == ProgramKind::kIngestion) return "ingestion program";
  return is_scoring ? "scoring program" : "submission";
}

std::string PythonContainerName(ProgramKind kind, const RunArgs& args) {
  // The program is "scoring_" in both steps, as the Python worker names it.
  return std::string(kind == ProgramKind::kIngestion ? "ingestion_" : "scoring_") + "uPK-" +
         std::to_string(args.user_pk) + "_sID-" + std::to_string(args.id);
}

ProgramContainer ProgramContainerSpec(const RunArgs& args, ProgramKind kind,
                                      const std::string& command, const std::string& job_uid,
                                      const JobFolder& folder, const JobEnvironment& env,
                                      const std::string& network_mode) {
  const bool ingestion = kind == ProgramKind::kIngestion;
  ProgramContainer out;
  ContainerSpec& spec = out.spec;
  spec.name = PythonContainerName(kind, args);
  spec.image = args.docker_image;
  spec.cmd = {"sh", "-c", command};
  spec.working_dir = "/app/program";
  spec.env = {"PYTHONUNBUFFERED=1"};
  const ContainerOptions& c = env.container;
  if (!c.http_proxy.empty()) {
    spec.env.push_back("http_proxy=" + c.http_proxy);
    spec.env.push_back("HTTP_PROXY=" + c.http_proxy);
  }
  if (!c.https_proxy.empty()) {
    spec.env.push_back("https_proxy=" + c.https_proxy);
    spec.env.push_back("HTTPS_PROXY=" + c.https_proxy);
  }
  spec.env.insert(spec.env.end(), c.env.begin(), c.env.end());
  spec.labels = env.labels;
  spec.labels[kLabelWorker] = "codabench-worker";
  spec.labels[kLabelSubmission] = std::to_string(args.id);
  spec.labels[kLabelJob] = job_uid;
  spec.labels[kLabelKind] = ProgramKindName(kind);
  spec.labels[kLabelStage] = StageName(args.is_scoring);

  auto mount = [&](const fs::path& p, const char* target, bool ro) {
    out.mount_sources.push_back(p);
    spec.mounts.push_back({ToHostPath(p, env.base_dir, env.host_dir).string(), target, ro});
  };
  mount(folder.program(kind), "/app/program", false);
  mount(folder.output(), "/app/output", false);
  mount(folder.data(), "/app/data", true);
  if (ingestion) {
    const bool from_res = args.ingestion_only_during_scoring && args.is_scoring;
    mount(from_res ? folder.input() / "res" : folder.program(ProgramKind::kProgram),
          "/app/ingested_program", false);
  }
  if (args.is_scoring) {
    mount(folder.shared(), "/app/shared", false);
    mount(folder.input(), "/app/input", false);
  }
  if (!args.input_data.empty()) mount(folder.input_data(), "/app/input_data", false);
  for (const Mount& m : c.extra_mounts) spec.mounts.push_back(m);

  spec.cap_drop = DroppedCapabilities();
  spec.security_opt = ContainerSecurityOptions(c);
  spec.pids_limit = c.pids_limit;
  spec.nofile_limit = c.nofile_limit;
  spec.runtime = c.runtime;
  spec.network_disabled = c.network_disabled;
  if (!c.network_disabled) spec.network_mode = network_mode.empty() ? c.network : network_mode;
  spec.device_requests = c.device_requests;
  spec.ipc_mode = c.ipc_mode;
  spec.shm_size_bytes = c.shm_size_bytes;
  spec.memory_bytes = c.memory_bytes;
  spec.nano_cpus = c.nano_cpus;
  spec.cpuset_cpus = c.cpuset_cpus;
  spec.log_driver = "none";
  return out;
}

}  // namespace cw
