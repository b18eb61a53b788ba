// The worker's settings. Read from the environment and an optional `.env`
// file with the same names the Python Codabench worker uses, so an existing
// `.env` works unchanged (contract §6).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"

namespace cw {

using EnvMap = std::map<std::string, std::string>;

// Parses a docker-compose style .env: KEY=VALUE lines, `#` comments, blank
// lines, optional `export `, single or double quotes around the value.
Result<EnvMap> ParseDotEnv(const std::string& text);
Result<EnvMap> ReadDotEnvFile(const std::filesystem::path& path);

// The process environment as a map.
EnvMap ProcessEnvironment();

// "True", "true", "1", "yes", "on" (any case) are true.
bool ParseBool(const std::string& value);

// GPU_DEVICE's default, as Codabench's worker has it: every GPU, through CDI.
inline constexpr const char* kDefaultGpuDevice = "nvidia.com/gpu=all";
inline constexpr const char* kDefaultContainerNetwork = "codabench-jobs";

struct WorkerConfig {
  std::string broker_url;
  bool broker_use_ssl = false;
  std::string broker_ssl_ca_certs;  // BROKER_SSL_CA_CERTS: CA bundle for the broker's certificate
  // REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE): CA bundle for the site and its
  // storage. The Python worker's HTTP library reads the same variables, so a
  // .env for a site with a private CA already has it.
  std::string site_ca_bundle;
  // HOST_DIRECTORY: the base folder as the container engine's daemon sees it.
  std::filesystem::path host_directory = "/tmp/codabench/";
  // The same folder as this process sees it (contract §5): /codabench when the
  // worker runs in a container with it mounted there, else host_directory.
  std::filesystem::path base_directory = "/tmp/codabench/";
  // Why base_directory is what it is, for the log at start.
  std::string base_directory_reason = "not in a container: the worker uses HOST_DIRECTORY itself";
  bool base_directory_doubtful = false;  // a /codabench was there but not taken
  std::string container_engine = "docker";
  std::string container_socket = "unix:///var/run/docker.sock";
  bool use_gpu = false;
  std::string gpu_device = kDefaultGpuDevice;
  bool network_disabled = false;
  std::string container_http_proxy;
  std::string container_https_proxy;
  bool ignore_cleanup = false;
  double max_cache_dir_size_gb = 10.0;
  std::string log_level = "INFO";
  bool serialized_logs = false;
  // WORKER_BUNDLE_URL_REWRITE=FROM|TO
  std::optional<std::pair<std::string, std::string>> bundle_url_rewrite;

  // Ours, not the Python worker's (each also a `run` option). Kept as text
  // here and read by gpu/worker_slots.h, which says what each accepts.
  std::string worker_slots;        // WORKER_SLOTS: "" (1), "auto" (one per GPU) or a count
  std::string gpus_per_slot;       // GPUS_PER_SLOT
  std::string gpu_map;             // GPU_MAP: "0,1;2,3"
  std::string gpu_driver;          // GPU_DRIVER: "cdi" (default) or "nvidia"
  std::string split_cpus;          // SPLIT_CPUS: "" (true) or a boolean
  std::string container_ipc;       // CONTAINER_IPC: "host", "private", "shareable"
  std::string container_shm_size;  // CONTAINER_SHM_SIZE: "16g"
  std::string container_memory;    // CONTAINER_MEMORY: per container
  std::string container_cpus;      // CONTAINER_CPUS: per container, e.g. "4" or "2.5"
  std::string extra_mounts;        // EXTRA_MOUNTS: "/data:/data:ro,/models:/models"
  // SHARED_NETWORK_NAMESPACES: each program joins a fresh network namespace
  // its slot made ahead (job/network_holders.h) instead of its container
  // getting one as it starts (slower); never one another program used.
  bool shared_network_namespaces = true;
  // COMPETITION_CONTAINER_NETWORK: the network the programs sit on, made at
  // start when missing with traffic between its containers off; "bridge" is
  // Docker's default network (where programs of other jobs are reachable).
  std::string container_network = kDefaultContainerNetwork;
  // CONTAINER_RUNTIME: the OCI runtime every program runs under, by the
  // name the engine knows it (e.g. runsc, gVisor); "" = the engine's default.
  std::string container_runtime;

  // Limits on what one job's programs and bundles may take of the host
  // (README "Security"). 0 turns a limit off.
  long long container_pids_limit = 4096;    // CONTAINER_PIDS_LIMIT: processes per container
  // Under the engine's own hard limit on every usual host (raising past it
  // fails the start), above what data loaders need.
  long long container_nofile_limit = 16384;  // CONTAINER_NOFILE_LIMIT: open files per process
  double max_unpacked_size_gb = 50;         // MAX_UNPACKED_SIZE_GB: per bundle, once unzipped
  long long max_unpacked_files = 1000000;   // MAX_UNPACKED_FILES: entries per bundle
  double min_free_disk_gb = 2;              // MIN_FREE_DISK_GB: unzipping stops above this reserve
  double max_output_size_gb = 20;           // MAX_OUTPUT_SIZE_GB: what a job's programs may write
  // MAX_IMAGE_STORE_GB: the engine's image store is kept under this by
  // removing competition images this worker used least recently (0: off).
  double max_image_store_gb = 0;
  // WORKER_SHUTDOWN_TIMEOUT (`run --shutdown-timeout`): seconds a warm
  // shutdown waits for running jobs before stopping them; none: wait.
  std::optional<double> shutdown_timeout_s;
  // METRICS_ADDRESS (`run --metrics-address`): HOST:PORT for /metrics,
  // /healthz and /readyz (README "Metrics and health"); "": off.
  std::string metrics_address;
  // METRICS_TOKEN: /status over HTTP answers only "Authorization: Bearer
  // <token>"; without a token it is not served over HTTP (the status socket
  // still is). /metrics and the health paths never need it.
  std::string metrics_token;
};

// What LoadConfig sees of the machine when it decides where the worker's own
// view of HOST_DIRECTORY is.
struct ContainerProbe {
  bool container_marker = false;   // /.dockerenv or /run/.containerenv exists
  bool codabench_dir = false;      // /codabench is a folder
  bool codabench_mounted = false;  // ... and a mount point (st_dev, /proc/self/mountinfo)
};

struct BaseDirectoryChoice {
  bool use_codabench = false;  // the worker writes jobs under /codabench
  std::string why;
  bool doubtful = false;  // a /codabench was there but not taken: worth a warning
};

// The Python worker's image mounts HOST_DIRECTORY at /codabench. We take
// /codabench for it only when that is established: HOST_DIRECTORY is
// /codabench, or we run in a container where /codabench is a mount point.
// (WORKER_BASE_DIRECTORY, read by ConfigFromEnv, wins over both.)
BaseDirectoryChoice ChooseBaseDirectory(const EnvMap& env, const ContainerProbe& probe);
// Whether /proc/self/mountinfo's text lists `path` as a mount point.
bool MountInfoHasMountPoint(const std::string& mountinfo, const std::string& path);
ContainerProbe ProbeContainer();  // the real machine

// Builds the configuration from settings (the .env file's values overlaid by
// the process environment). `in_container` tells whether /codabench is this
// process's view of HOST_DIRECTORY; WORKER_BASE_DIRECTORY, when set, is that
// view whatever `in_container` says.
Result<WorkerConfig> ConfigFromEnv(const EnvMap& env, bool in_container);
Result<WorkerConfig> ConfigFromEnv(const EnvMap& env, const BaseDirectoryChoice& base);

// Loads `.env` (when the file exists) under the process environment, then
// `overrides` (command-line options) over both, and decides where this
// process sees HOST_DIRECTORY (ChooseBaseDirectory on ProbeContainer()).
Result<WorkerConfig> LoadConfig(const std::optional<std::filesystem::path>& dotenv,
                                const EnvMap& overrides = {});

// Applies WORKER_BUNDLE_URL_REWRITE to a URL.
std::string RewriteUrl(const WorkerConfig& config, const std::string& url);

}  // namespace cw
