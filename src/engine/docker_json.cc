#include "engine/docker_json.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace cw {
namespace {

using nlohmann::json;

constexpr size_t kMaxPullLine = 1 << 20;

json MountsJson(const std::vector<Mount>& mounts) {
  json out = json::array();
  for (const Mount& m : mounts) {
    out.push_back({{"Type", "bind"},
                   {"Source", m.host_path},
                   {"Target", m.container_path},
                   {"ReadOnly", m.read_only}});
  }
  return out;
}

json DeviceRequestsJson(const std::vector<DeviceRequest>& requests) {
  json out = json::array();
  for (const DeviceRequest& r : requests) {
    json j = {{"Driver", r.driver}};
    if (!r.device_ids.empty()) {
      j["DeviceIDs"] = r.device_ids;
    } else {
      // The engine reads Count only without DeviceIDs; both would be refused.
      j["Count"] = r.count;
    }
    if (!r.capabilities.empty()) j["Capabilities"] = r.capabilities;
    out.push_back(std::move(j));
  }
  return out;
}

bool ContainsNoCase(std::string_view text, std::string_view needle) {
  auto it = std::search(text.begin(), text.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

long long NumberOr0(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<long long>() : 0;
}

std::string StringOrEmpty(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

json BuildCreateBody(const ContainerSpec& spec) {
  json body = {
      {"Image", spec.image},
      {"AttachStdin", false},
      {"AttachStdout", true},
      {"AttachStderr", true},
      // Without a TTY the engine keeps stdout and stderr apart (multiplexed).
      {"Tty", false},
      {"OpenStdin", spec.open_stdin},
  };
  if (spec.open_stdin) body["StdinOnce"] = false;
  if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
  if (!spec.entrypoint.empty()) body["Entrypoint"] = spec.entrypoint;
  if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
  if (!spec.env.empty()) body["Env"] = spec.env;
  if (!spec.labels.empty()) body["Labels"] = spec.labels;
  if (!spec.hostname.empty()) body["Hostname"] = spec.hostname;

  json host = json::object();
  if (!spec.mounts.empty()) host["Mounts"] = MountsJson(spec.mounts);
  if (!spec.cap_drop.empty()) host["CapDrop"] = spec.cap_drop;
  if (!spec.cap_add.empty()) host["CapAdd"] = spec.cap_add;
  if (!spec.security_opt.empty()) host["SecurityOpt"] = spec.security_opt;
  if (spec.network_disabled) {
    host["NetworkMode"] = "none";
  } else if (!spec.network_mode.empty()) {
    host["NetworkMode"] = spec.network_mode;
  }
  if (!spec.device_requests.empty())
    host["DeviceRequests"] = DeviceRequestsJson(spec.device_requests);
  if (!spec.ipc_mode.empty()) host["IpcMode"] = spec.ipc_mode;
  if (spec.shm_size_bytes > 0) host["ShmSize"] = spec.shm_size_bytes;
  if (spec.memory_bytes > 0) {
    host["Memory"] = spec.memory_bytes;
    // No swap beyond the limit (the engine's default doubles it with swap):
    // a program past its limit is stopped, not slowed to a crawl on disk.
    host["MemorySwap"] = spec.memory_bytes;
  }
  if (spec.nano_cpus > 0)
    host["NanoCpus"] = static_cast<long long>(std::llround(spec.nano_cpus * 1e9));
  if (!spec.cpuset_cpus.empty()) host["CpusetCpus"] = spec.cpuset_cpus;
  if (spec.pids_limit > 0) host["PidsLimit"] = spec.pids_limit;
  if (spec.nofile_limit > 0) {
    host["Ulimits"] = json::array(
        {{{"Name", "nofile"}, {"Soft", spec.nofile_limit}, {"Hard", spec.nofile_limit}}});
  }
  if (!spec.runtime.empty()) host["Runtime"] = spec.runtime;
  if (!spec.log_driver.empty()) host["LogConfig"] = {{"Type", spec.log_driver}};
  if (!host.empty()) body["HostConfig"] = std::move(host);
  return body;
}

EngineInfo::Runtime RuntimeFromInfo(const json& entry) {
  EngineInfo::Runtime out;
  if (!entry.is_object()) return out;
  out.path = StringOrEmpty(entry, "path");
  if (auto args = entry.find("runtimeArgs"); args != entry.end() && args->is_array()) {
    for (const json& a : *args) {
      if (a.is_string()) out.args.push_back(a.get<std::string>());
    }
  }
  return out;
}

std::string EngineErrorMessage(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    std::string m = StringOrEmpty(j, "message");
    if (!m.empty()) return m;
  }
  std::string_view text = Trim(body);
  if (text.empty()) return "(no message)";
  constexpr size_t kMax = 500;
  return text.size() > kMax ? std::string(text.substr(0, kMax)) + "..." : std::string(text);
}

Result<ContainerState> ParseInspectBody(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Internal("the engine's description of a container is not JSON");
  auto state = j.find("State");
  if (state == j.end() || !state->is_object()) {
    return Internal("the engine's description of a container has no State");
  }
  ContainerState out;
  auto flag = [&](const char* key) {
    auto it = state->find(key);
    return it != state->end() && it->is_boolean() && it->get<bool>();
  };
  out.running = flag("Running");
  out.oom_killed = flag("OOMKilled");
  out.exit_code = static_cast<int>(NumberOr0(*state, "ExitCode"));
  out.error = StringOrEmpty(*state, "Error");
  if (auto size = j.find("SizeRw"); size != j.end() && size->is_number()) {
    out.writable_bytes = size->get<long long>();
  }
  // Podman 4 answers null (or nothing) for requests it dropped.
  if (auto host = j.find("HostConfig"); host != j.end() && host->is_object()) {
    auto requests = host->find("DeviceRequests");
    out.device_requests = requests != host->end() && requests->is_array()
                              ? static_cast<int>(requests->size())
                              : 0;
  }
  return out;
}

Result<ContainerStats> ParseStatsBody(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Internal("the engine's container stats are not JSON");
  ContainerStats out;
  auto number = [](const json& obj, const char* key) -> long long {
    auto it = obj.find(key);
    return it != obj.end() && it->is_number() ? it->get<long long>() : -1;
  };
  if (auto mem = j.find("memory_stats"); mem != j.end() && mem->is_object()) {
    out.memory_bytes = number(*mem, "usage");
    out.memory_peak_bytes = number(*mem, "max_usage");
  }
  if (auto cpu = j.find("cpu_stats"); cpu != j.end() && cpu->is_object()) {
    if (auto usage = cpu->find("cpu_usage"); usage != cpu->end() && usage->is_object()) {
      long long ns = number(*usage, "total_usage");
      if (ns >= 0) out.cpu_seconds = static_cast<double>(ns) / 1e9;
    }
  }
  return out;
}

Result<std::vector<ImageInfo>> ParseImagesBody(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Internal("the engine's list of images is not a JSON list");
  std::vector<ImageInfo> out;
  for (const json& item : j) {
    if (!item.is_object()) continue;
    ImageInfo info;
    info.id = StringOrEmpty(item, "Id");
    if (info.id.empty()) continue;
    if (auto tags = item.find("RepoTags"); tags != item.end() && tags->is_array()) {
      for (const json& t : *tags) {
        // Untagged images list "<none>:<none>".
        if (t.is_string() && t.get<std::string>() != "<none>:<none>") info.repo_tags.push_back(t);
      }
    }
    info.size_bytes = NumberOr0(item, "Size");
    auto shared = item.find("SharedSize");
    info.shared_bytes = shared != item.end() && shared->is_number() ? shared->get<long long>() : -1;
    info.created_unix = NumberOr0(item, "Created");
    out.push_back(std::move(info));
  }
  return out;
}

Result<long long> ParseLayersSize(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("LayersSize") || !j["LayersSize"].is_number()) {
    return Internal("the engine's disk usage answer has no LayersSize");
  }
  long long layers = j["LayersSize"].get<long long>();
  if (layers > 0 || !j.contains("Images") || !j["Images"].is_array()) return layers;
  // Podman 4.3 answers LayersSize 0 whatever it holds: then each image
  // whole, once per id (an image's tags are one entry each), which counts a
  // layer two images share twice. Never less than the store holds, so the
  // budget removes sooner than it must, never later.
  std::set<std::string> seen;
  long long total = 0;
  for (const json& image : j["Images"]) {
    if (!image.is_object() || !image.contains("Id") || !image["Id"].is_string()) continue;
    if (!seen.insert(image["Id"].get<std::string>()).second) continue;
    total += NumberOr0(image, "Size");
  }
  return total;
}

Status EngineHttpError(long http_status, std::string_view body, const std::string& what) {
  std::string message = what + ": " + EngineErrorMessage(body);
  switch (http_status) {
    case 400:
      return InvalidInput(std::move(message));
    case 401:
    case 403:
      return PermissionDenied(std::move(message));
    case 404:
      return NotFound(std::move(message));
    case 503:
      return Unavailable(std::move(message));
    default:
      return Internal(std::move(message) + " (HTTP " + std::to_string(http_status) + ")");
  }
}

Status PullError(std::string_view image, std::string_view engine_message) {
  std::string message = "pulling image " + std::string(image) + ": " + std::string(engine_message);
  for (std::string_view not_there :
       {"not found", "manifest unknown", "pull access denied", "repository does not exist"}) {
    if (ContainsNoCase(engine_message, not_there)) return NotFound(std::move(message));
  }
  return Unavailable(std::move(message));
}

void PullStreamParser::Feed(std::string_view chunk) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    std::string_view piece = chunk.substr(0, nl);
    if (!skipping_) {
      if (line_.size() + piece.size() > kMaxPullLine) {
        skipping_ = true;
        line_.clear();
      } else {
        line_.append(piece);
      }
    }
    if (nl == std::string_view::npos) return;
    if (!skipping_) ParseLine(line_);
    skipping_ = false;
    line_.clear();
    chunk.remove_prefix(nl + 1);
  }
}

void PullStreamParser::Finish() {
  if (!skipping_) ParseLine(line_);
  skipping_ = false;
  line_.clear();
}

void PullStreamParser::ParseLine(std::string_view line) {
  line = Trim(line);
  if (line.empty()) return;
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;  // not ours to judge; the HTTP status and errors decide

  // Any line with an "error" the engine set fails the pull, whatever the
  // HTTP status said (the Python worker checks `line.get("error")` too).
  std::string error = StringOrEmpty(j, "error");
  if (auto e = j.find("error"); error.empty() && e != j.end() && !e->is_string()) {
    const bool set = !e->is_null() && !(e->is_boolean() && !e->get<bool>()) &&
                     !(e->is_structured() && e->empty()) && !(e->is_number() && e->get<double>() == 0);
    if (set) error = e->dump();
  }
  if (auto detail = j.find("errorDetail");
      error.empty() && detail != j.end() && detail->is_object()) {
    error = StringOrEmpty(*detail, "message");
    if (error.empty()) error = "the engine reported an error without a message";
  }
  if (!error.empty()) {
    if (error_.empty()) error_ = std::move(error);
    return;
  }

  PullProgress p;
  p.layer_id = StringOrEmpty(j, "id");
  p.status = StringOrEmpty(j, "status");
  if (auto detail = j.find("progressDetail"); detail != j.end() && detail->is_object()) {
    p.current = NumberOr0(*detail, "current");
    p.total = NumberOr0(*detail, "total");
  }
  if (progress_) progress_(p);
}

}  // namespace cw
