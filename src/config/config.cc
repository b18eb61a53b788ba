#include "config/config.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

extern char** environ;

namespace cw {
namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Get(const EnvMap& env, const std::string& key, const std::string& fallback = "") {
  auto it = env.find(key);
  if (it == env.end() || it->second.empty()) return fallback;
  return it->second;
}

}  // namespace

Result<EnvMap> ParseDotEnv(const std::string& text) {
  EnvMap out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (t.rfind("export ", 0) == 0) t = Trim(t.substr(7));
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidInput(".env line " + std::to_string(lineno) + " is not KEY=VALUE: " + t);
    }
    std::string key = Trim(t.substr(0, eq));
    std::string value = Trim(t.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    } else {
      // An unquoted value ends at " #" (a trailing comment), as docker compose reads it.
      auto hash = value.find(" #");
      if (hash != std::string::npos) value = Trim(value.substr(0, hash));
    }
    out[key] = value;
  }
  return out;
}

Result<EnvMap> ReadDotEnvFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read settings file " + path.string());
  std::stringstream buf;
  buf << in.rdbuf();
  auto parsed = ParseDotEnv(buf.str());
  if (!parsed.ok()) return parsed.status().Prefixed(path.string());
  return parsed;
}

EnvMap ProcessEnvironment() {
  EnvMap out;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

bool ParseBool(const std::string& value) {
  std::string v = Lower(Trim(value));
  return v == "true" || v == "1" || v == "yes" || v == "on";
}

namespace {

// A setting that must be a number >= 0 (`what` says which kind, for the
// message), or `fallback` when unset or empty.
Result<double> NonNegative(const EnvMap& env, const char* key, double fallback,
                           const char* what) {
  std::string text = Trim(Get(env, key));
  if (text.empty()) return fallback;
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    bool whole = std::string_view(what) != "a whole number" || v == std::floor(v);
    if (used == text.size() && v >= 0 && std::isfinite(v) && whole) return v;
  } catch (const std::exception&) {
  }
  return InvalidInput(std::string(key) + " must be " + what + " (0 or more), got '" + text + "'");
}

constexpr const char* kContainerMount = "/codabench";

std::string NoTrailingSlash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}
}  // namespace

BaseDirectoryChoice ChooseBaseDirectory(const EnvMap& env, const ContainerProbe& probe) {
  if (NoTrailingSlash(Get(env, "HOST_DIRECTORY")) == kContainerMount) {
    return {true, "HOST_DIRECTORY is /codabench: the same path for the worker and the engine"};
  }
  if (probe.container_marker && probe.codabench_dir && probe.codabench_mounted) {
    return {true,
            "in a container with /codabench mounted: taken as HOST_DIRECTORY's mount, as the "
            "Python worker's image has it"};
  }
  if (probe.container_marker && probe.codabench_dir) {
    return {false,
            "/codabench is in this container but is not a mount point, so not HOST_DIRECTORY: "
            "the worker uses HOST_DIRECTORY itself (set WORKER_BASE_DIRECTORY=/codabench if "
            "/codabench is HOST_DIRECTORY after all)",
            true};
  }
  if (probe.container_marker) {
    return {false, "in a container without /codabench: the worker uses HOST_DIRECTORY itself"};
  }
  return {false, "not in a container: the worker uses HOST_DIRECTORY itself"};
}

bool MountInfoHasMountPoint(const std::string& mountinfo, const std::string& path) {
  // "36 35 98:0 /root /mount/point rw,noatime ... - ext3 /dev/root rw": the
  // fifth field; spaces in it are written \040.
  std::istringstream in(mountinfo);
  std::string line;
  const std::string want = NoTrailingSlash(path);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f[5];
    for (auto& field : f) fields >> field;
    if (!f[4].empty() && NoTrailingSlash(f[4]) == want) return true;
  }
  return false;
}

ContainerProbe ProbeContainer() {
  ContainerProbe probe;
  std::error_code ec;
  probe.container_marker = std::filesystem::exists("/.dockerenv", ec) ||
                           std::filesystem::exists("/run/.containerenv", ec);
  probe.codabench_dir = std::filesystem::is_directory(kContainerMount, ec);
  if (probe.codabench_dir) {
    struct stat root {}, mount {};
    if (::stat("/", &root) == 0 && ::stat(kContainerMount, &mount) == 0 &&
        root.st_dev != mount.st_dev) {
      probe.codabench_mounted = true;
    } else {
      std::ifstream in("/proc/self/mountinfo");
      std::stringstream text;
      text << in.rdbuf();
      probe.codabench_mounted = MountInfoHasMountPoint(text.str(), kContainerMount);
    }
  }
  return probe;
}

Result<WorkerConfig> ConfigFromEnv(const EnvMap& env, bool in_container) {
  BaseDirectoryChoice base;
  base.use_codabench = in_container;
  base.why = in_container ? "in a container with /codabench mounted"
                          : "not in a container: the worker uses HOST_DIRECTORY itself";
  return ConfigFromEnv(env, base);
}

Result<WorkerConfig> ConfigFromEnv(const EnvMap& env, const BaseDirectoryChoice& base) {
  WorkerConfig c;
  c.broker_url = Get(env, "BROKER_URL");
  c.broker_use_ssl = ParseBool(Get(env, "BROKER_USE_SSL", "false"));
  c.broker_ssl_ca_certs = Get(env, "BROKER_SSL_CA_CERTS");
  c.site_ca_bundle = Get(env, "REQUESTS_CA_BUNDLE", Get(env, "CURL_CA_BUNDLE"));
  c.host_directory = Get(env, "HOST_DIRECTORY", "/tmp/codabench/");
  if (c.host_directory.is_relative()) {
    return InvalidInput("HOST_DIRECTORY must be an absolute path, got '" +
                        c.host_directory.string() + "'");
  }
  c.base_directory = base.use_codabench ? std::filesystem::path(kContainerMount)
                                        : c.host_directory;
  c.base_directory_reason = base.why;
  c.base_directory_doubtful = base.doubtful;
  if (std::string own = Get(env, "WORKER_BASE_DIRECTORY"); !own.empty()) {
    c.base_directory = own;
    if (c.base_directory.is_relative()) {
      return InvalidInput("WORKER_BASE_DIRECTORY must be an absolute path, got '" + own + "'");
    }
    c.base_directory_reason = "WORKER_BASE_DIRECTORY says so";
    c.base_directory_doubtful = false;
  }
  c.container_engine = Lower(Get(env, "CONTAINER_ENGINE_EXECUTABLE", "docker"));
  if (c.container_engine != "docker" && c.container_engine != "podman") {
    return InvalidInput("CONTAINER_ENGINE_EXECUTABLE must be docker or podman, got '" +
                        c.container_engine + "'");
  }
  c.container_socket = Get(env, "CONTAINER_SOCKET", c.container_engine == "podman"
                                                        ? "unix:///run/user/1000/podman/podman.sock"
                                                        : "unix:///var/run/docker.sock");
  c.use_gpu = ParseBool(Get(env, "USE_GPU", "false"));
  c.gpu_device = Get(env, "GPU_DEVICE", kDefaultGpuDevice);
  c.network_disabled = ParseBool(Get(env, "COMPETITION_CONTAINER_NETWORK_DISABLED", "false"));
  c.shared_network_namespaces = ParseBool(Get(env, "SHARED_NETWORK_NAMESPACES", "true"));
  c.container_network = Get(env, "COMPETITION_CONTAINER_NETWORK", kDefaultContainerNetwork);
  c.container_http_proxy = Get(env, "COMPETITION_CONTAINER_HTTP_PROXY");
  c.container_https_proxy = Get(env, "COMPETITION_CONTAINER_HTTPS_PROXY");
  // The Python worker only checks that the variable is set.
  c.ignore_cleanup = env.count("CODALAB_IGNORE_CLEANUP_STEP") &&
                     !env.at("CODALAB_IGNORE_CLEANUP_STEP").empty() &&
                     Lower(env.at("CODALAB_IGNORE_CLEANUP_STEP")) != "false" &&
                     env.at("CODALAB_IGNORE_CLEANUP_STEP") != "0";
  CW_ASSIGN_OR_RETURN(c.max_cache_dir_size_gb,
                      NonNegative(env, "MAX_CACHE_DIR_SIZE_GB", 10, "a number of gigabytes"));
  CW_ASSIGN_OR_RETURN(c.max_unpacked_size_gb, NonNegative(env, "MAX_UNPACKED_SIZE_GB",
                                                          c.max_unpacked_size_gb,
                                                          "a number of gigabytes"));
  CW_ASSIGN_OR_RETURN(c.min_free_disk_gb, NonNegative(env, "MIN_FREE_DISK_GB", c.min_free_disk_gb,
                                                      "a number of gigabytes"));
  CW_ASSIGN_OR_RETURN(c.max_output_size_gb, NonNegative(env, "MAX_OUTPUT_SIZE_GB",
                                                        c.max_output_size_gb,
                                                        "a number of gigabytes"));
  CW_ASSIGN_OR_RETURN(c.max_image_store_gb, NonNegative(env, "MAX_IMAGE_STORE_GB",
                                                        c.max_image_store_gb,
                                                        "a number of gigabytes"));
  CW_ASSIGN_OR_RETURN(double files, NonNegative(env, "MAX_UNPACKED_FILES",
                                                static_cast<double>(c.max_unpacked_files),
                                                "a whole number"));
  c.max_unpacked_files = static_cast<long long>(files);
  CW_ASSIGN_OR_RETURN(double pids, NonNegative(env, "CONTAINER_PIDS_LIMIT",
                                               static_cast<double>(c.container_pids_limit),
                                               "a whole number"));
  c.container_pids_limit = static_cast<long long>(pids);
  CW_ASSIGN_OR_RETURN(double nofile, NonNegative(env, "CONTAINER_NOFILE_LIMIT",
                                                 static_cast<double>(c.container_nofile_limit),
                                                 "a whole number"));
  c.container_nofile_limit = static_cast<long long>(nofile);
  c.log_level = Get(env, "LOG_LEVEL", "INFO");
  c.serialized_logs = ParseBool(Get(env, "SERIALIZED", "false"));
  std::string rewrite = Get(env, "WORKER_BUNDLE_URL_REWRITE");
  if (!rewrite.empty()) {
    auto bar = rewrite.find('|');
    if (bar == std::string::npos || bar == 0) {
      return InvalidInput("WORKER_BUNDLE_URL_REWRITE must look like FROM|TO, got '" + rewrite +
                          "'");
    }
    c.bundle_url_rewrite = std::make_pair(rewrite.substr(0, bar), rewrite.substr(bar + 1));
  }
  c.worker_slots = Trim(Get(env, "WORKER_SLOTS"));
  c.gpus_per_slot = Trim(Get(env, "GPUS_PER_SLOT"));
  c.gpu_map = Trim(Get(env, "GPU_MAP"));
  c.gpu_driver = Lower(Trim(Get(env, "GPU_DRIVER")));
  c.split_cpus = Trim(Get(env, "SPLIT_CPUS"));
  c.container_ipc = Trim(Get(env, "CONTAINER_IPC"));
  c.container_shm_size = Trim(Get(env, "CONTAINER_SHM_SIZE"));
  c.container_memory = Trim(Get(env, "CONTAINER_MEMORY"));
  c.container_cpus = Trim(Get(env, "CONTAINER_CPUS"));
  c.extra_mounts = Trim(Get(env, "EXTRA_MOUNTS"));
  c.metrics_address = Trim(Get(env, "METRICS_ADDRESS"));
  c.metrics_token = Trim(Get(env, "METRICS_TOKEN"));
  c.container_runtime = Trim(Get(env, "CONTAINER_RUNTIME"));
  if (c.container_runtime.find_first_of(" \t\r\n\"'") != std::string::npos) {
    return InvalidInput("CONTAINER_RUNTIME must be one runtime's name as the engine knows it "
                        "(e.g. runsc), got '" + c.container_runtime + "'");
  }
  // Unset or "none": a warm shutdown waits as long as its jobs run.
  if (Lower(Trim(Get(env, "WORKER_SHUTDOWN_TIMEOUT"))) != "none") {
    CW_ASSIGN_OR_RETURN(double seconds, NonNegative(env, "WORKER_SHUTDOWN_TIMEOUT", -1,
                                                    "a number of seconds, or none"));
    if (seconds >= 0) c.shutdown_timeout_s = seconds;
  }
  return c;
}

Result<WorkerConfig> LoadConfig(const std::optional<std::filesystem::path>& dotenv,
                                const EnvMap& overrides) {
  EnvMap env;
  if (dotenv) {
    CW_ASSIGN_OR_RETURN(env, ReadDotEnvFile(*dotenv));
  }
  for (auto& [k, v] : ProcessEnvironment()) env[k] = v;
  for (const auto& [k, v] : overrides) env[k] = v;
  // The Python worker's image mounts HOST_DIRECTORY at /codabench; so does
  // ours. Only a real mount is taken for it (see ChooseBaseDirectory).
  return ConfigFromEnv(env, ChooseBaseDirectory(env, ProbeContainer()));
}

std::string RewriteUrl(const WorkerConfig& config, const std::string& url) {
  if (!config.bundle_url_rewrite) return url;
  const auto& [from, to] = *config.bundle_url_rewrite;
  if (url.rfind(from, 0) == 0) return to + url.substr(from.size());
  return url;
}

}  // namespace cw
