// codabench-worker: the Codabench compute worker.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/log.h"

#include "cli/doctor_cmd.h"
#include "cli/run_local.h"
#include "cli/status_cmd.h"
#include "worker/serve.h"

namespace {

// The options that override settings of the .env (slots, GPUs, per-container
// limits), shared by `run` and `doctor` so both see the same worker. The
// values are checked where the settings are read (gpu/worker_slots.h).
struct SettingOptions {
  std::map<std::string, std::string> values;
  std::vector<std::string> mounts;
  bool no_cpu_split = false;

  cw::EnvMap Overrides() const {
    cw::EnvMap out(values.begin(), values.end());
    if (!mounts.empty()) {
      std::string joined;
      for (const std::string& m : mounts) joined += (joined.empty() ? "" : ",") + m;
      out["EXTRA_MOUNTS"] = joined;
    }
    if (no_cpu_split) out["SPLIT_CPUS"] = "false";
    return out;
  }
};

// --env-file when given, else ./.env when there is one.
std::optional<std::filesystem::path> EnvFile(const std::string& option) {
  if (!option.empty()) return option;
  if (std::filesystem::exists(".env")) return std::filesystem::path(".env");
  return std::nullopt;
}

void AddSettingOptions(CLI::App* app, SettingOptions& settings) {
  struct Option {
    const char* flag;
    const char* setting;
    const char* help;
  };
  static const Option kOptions[] = {
      {"--slots", "WORKER_SLOTS",
       "jobs run at once: a number, or auto (one per GPU); default 1, or as GPU_MAP / "
       "GPUS_PER_SLOT give"},
      {"--gpus-per-slot", "GPUS_PER_SLOT", "GPUs each slot owns (turns GPU slots on)"},
      {"--gpu-map", "GPU_MAP", "explicit GPU sets, e.g. \"0,1;2,3\" (indexes or UUIDs)"},
      {"--gpu-driver", "GPU_DRIVER",
       "how containers get GPUs: cdi (default, as Codabench) or nvidia (Docker's --gpus)"},
      {"--ipc", "CONTAINER_IPC", "IPC mode of job containers: host, private, shareable, none"},
      {"--shm-size", "CONTAINER_SHM_SIZE", "/dev/shm size of job containers, e.g. 16g"},
      {"--memory", "CONTAINER_MEMORY", "memory limit of each job container, e.g. 64g"},
      {"--cpus", "CONTAINER_CPUS", "CPU limit of each job container, e.g. 8 or 2.5"},
  };
  for (const Option& o : kOptions) {
    app->add_option_function<std::string>(
        o.flag, [&settings, key = std::string(o.setting)](const std::string& v) {
          settings.values[key] = v;
        },
        std::string(o.help) + " (env " + o.setting + ")");
  }
  app->add_option("--mount", settings.mounts,
                  "extra host folder in every job container, HOST:CONTAINER[:ro|rw]; repeat for "
                  "more (env EXTRA_MOUNTS, comma-separated)");
  app->add_flag("--no-cpu-split", settings.no_cpu_split,
                "do not give each slot its own CPUs (env SPLIT_CPUS=False)");
}

// What `run` and `doctor` share: the .env, the broker's TLS and the setting
// overrides, read the same way so both see the same worker.
struct WorkerSettingsOptions {
  std::string env_file;
  bool insecure_tls = false;
  SettingOptions settings;

  void AddEnvFile(CLI::App* app) {
    app->add_option("--env-file", env_file,
                    "settings file read under the environment (default: ./.env when it exists)");
  }
  // After the command's own options, so --help lists them as before.
  void AddTlsAndSettings(CLI::App* app, const std::string& tls_help) {
    app->add_flag("--insecure-broker-tls", insecure_tls, tls_help);
    AddSettingOptions(app, settings);
  }
  // Into cw::ServeOptions or cw::DoctorCommandOptions.
  template <typename Options>
  void ApplyTo(Options& options) const {
    options.env_file = EnvFile(env_file);
    options.tls_verify = !insecure_tls;
    options.overrides = settings.Overrides();
  }
};

// `run-local BUNDLE SUBMISSION`: one phase on this machine.
struct RunLocalCommand {
  cw::RunLocalOptions local;
  std::string pull = "always";
  CLI::App* app = nullptr;

  void Add(CLI::App& parent) {
    app = parent.add_subcommand(
        "run-local",
        "Run a competition bundle's phase on one submission on this machine: prediction, then "
        "scoring, as a Codabench worker runs them, and print the scores");
    app->add_option("BUNDLE", local.bundle, "competition bundle: a zip or a folder")->required();
    app->add_option("SUBMISSION", local.submission, "submission: a zip or a folder")->required();
    app->add_option("--phase", local.phase, "phase index or name (default: the first)");
    app->add_option("--task", local.task, "task index within the phase (default: the first)");
    app->add_option("--image", local.image,
                    "image to run the programs in (default: the bundle's docker_image)");
    app->add_option("--out", local.out,
                    "folder for outputs and logs (default: ./codabench-run-local/<time>)");
    app->add_flag("--keep", local.keep, "keep the job folders and zips under OUT/work");
    app->add_option("--pull", pull, "image pull: always (falls back to a local copy), "
                                    "missing, never")
        ->check(CLI::IsMember({"always", "missing", "never"}));
    app->add_option("--socket", local.container_socket,
                    "container engine socket (default: CONTAINER_SOCKET or "
                    "unix:///var/run/docker.sock)");
  }

  int Run() {
    local.pull = pull == "missing" ? cw::PullPolicy::kMissing
                 : pull == "never" ? cw::PullPolicy::kNever
                                   : cw::PullPolicy::kAlways;
    local.color = isatty(STDOUT_FILENO);
    return cw::RunLocal(local);
  }
};

// `run`: serve a queue.
struct ServeCommand {
  cw::ServeOptions serve;
  WorkerSettingsOptions common;
  CLI::App* app = nullptr;

  void Add(CLI::App& parent) {
    app = parent.add_subcommand(
        "run", "Serve a Codabench queue: take jobs from BROKER_URL, run them, report to the site");
    common.AddEnvFile(app);
    app->add_option("--nodename", serve.nodename,
                    "Celery node name (default: compute-worker@<hostname>)");
    common.AddTlsAndSettings(app,
                             "with BROKER_USE_SSL, do not verify the broker's certificate (the "
                             "Python worker never does)");
    app->add_option_function<std::string>(
        "--shutdown-timeout",
        [this](const std::string& v) { common.settings.values["WORKER_SHUTDOWN_TIMEOUT"] = v; },
        "on SIGTERM/SIGINT, wait at most SECONDS for running jobs to finish before stopping them "
        "(default: wait; a second SIGTERM or SIGQUIT stops them at once) "
        "(env WORKER_SHUTDOWN_TIMEOUT)");
    app->add_option_function<std::string>(
        "--metrics-address",
        [this](const std::string& v) { common.settings.values["METRICS_ADDRESS"] = v; },
        "serve Prometheus /metrics, /healthz and /readyz on HOST:PORT, e.g. 127.0.0.1:9464, and "
        "/status to requests with METRICS_TOKEN (default: off) (env METRICS_ADDRESS)");
  }

  // --log-level, when given, wins over LOG_LEVEL in the .env too.
  int Run(const std::optional<std::string>& log_level) {
    common.ApplyTo(serve);
    if (log_level) serve.overrides["LOG_LEVEL"] = *log_level;
    return cw::Serve(serve);
  }
};

// `doctor`: can this machine serve a queue with these settings?
struct DoctorCommand {
  cw::DoctorCommandOptions options;
  WorkerSettingsOptions common;
  CLI::App* app = nullptr;

  void Add(CLI::App& parent) {
    app = parent.add_subcommand(
        "doctor", "Check that this machine can serve a Codabench queue with these settings: the "
                  "engine, image pulls, GPUs and their runtime, slots, HOST_DIRECTORY, the broker");
    common.AddEnvFile(app);
    app->add_option("--image", options.image,
                    "image to check pulls for, and to run the GPU and folder probes in when it "
                    "is on the machine (default: codalab/codalab-legacy:py37)");
    common.AddTlsAndSettings(app, "with BROKER_USE_SSL, do not verify the broker's certificate");
  }

  int Run() {
    common.ApplyTo(options);
    return cw::RunDoctorCommand(options);
  }
};

// `status`: what a running queue worker does.
struct StatusCommand {
  cw::StatusCommandOptions options;
  std::string env_file;
  CLI::App* app = nullptr;

  void Add(CLI::App& parent) {
    app = parent.add_subcommand(
        "status", "Show what a running queue worker does: broker, engine, each slot's job, the "
                  "last jobs");
    app->add_option("--env-file", env_file,
                    "the worker's settings file, to find its socket and METRICS_TOKEN (default: "
                    "./.env when it exists)");
    app->add_option("--nodename", options.nodename,
                    "the worker's node name (default: the only worker here, else "
                    "compute-worker@<hostname>)");
    auto* socket = app->add_option("--socket", options.socket,
                                   "the worker's status socket (BASE/status/NODE.sock)");
    app->add_option("--address", options.address,
                    "HOST:PORT of the worker's METRICS_ADDRESS, e.g. 127.0.0.1:9464")
        ->excludes(socket);
    app->add_flag("--json", options.json, "print the answer as JSON");
  }

  int Run() {
    options.env_file = EnvFile(env_file);
    return cw::RunStatusCommand(options);
  }
};

}  // namespace

#ifndef CW_VERSION
#define CW_VERSION "dev"
#endif

int main(int argc, char** argv) {
  CLI::App app{"codabench-worker: runs Codabench submissions in containers"};
  app.require_subcommand(1);
  std::string log_level = std::getenv("LOG_LEVEL") ? std::getenv("LOG_LEVEL") : "info";
  auto* log_level_option =
      app.add_option("--log-level", log_level, "trace, debug, info, warn, error (env LOG_LEVEL)");

  auto* version = app.add_subcommand("version", "Print the worker's version");
  RunLocalCommand run_local;
  run_local.Add(app);
  ServeCommand run;
  run.Add(app);
  DoctorCommand doctor;
  doctor.Add(app);
  StatusCommand status;
  status.Add(app);

  CLI11_PARSE(app, argc, argv);

  // The worker's own log goes to stderr: stdout carries the programs' output.
  spdlog::set_default_logger(spdlog::stderr_color_mt("codabench-worker"));
  // `run` reads LOG_LEVEL and SERIALIZED again from its .env (serve.cc);
  // --log-level, when given, wins there too.
  cw::ConfigureLogging(false, log_level);

  if (version->parsed()) {
    std::printf("codabench-worker %s\n", CW_VERSION);
    return 0;
  }
  if (run.app->parsed()) {
    return run.Run(log_level_option->count() > 0 ? std::optional<std::string>(log_level)
                                                 : std::nullopt);
  }
  if (status.app->parsed()) return status.Run();
  if (doctor.app->parsed()) return doctor.Run();
  if (run_local.app->parsed()) return run_local.Run();
  return 2;
}
