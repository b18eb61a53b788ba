#include "engine/docker_engine.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "engine/docker_json.h"
#include "engine/image_ref.h"
#include "engine/stream_demux.h"

namespace cw {
namespace {

using nlohmann::json;

std::string ContainerPath(const std::string& id) { return "/containers/" + PathEncode(id); }

Result<json> ParseJson(const HttpReply& reply, const std::string& what) {
  json j = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Internal("the Docker engine's answer to " + what +
                    " is not JSON: " + EngineErrorMessage(reply.body));
  }
  return j;
}

bool Contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

// The runtime's words for a command that is not in the image, in an error
// answer: the submission's fault (InvalidInput), not the engine's. Older
// engines send these as 500. OK for any other answer.
Status CommandCannotRun(const std::string& body) {
  std::string message = EngineErrorMessage(body);
  if (Contains(message, "executable file not found") ||
      Contains(message, "no such file or directory")) {
    return InvalidInput("the container's command cannot run: " + message);
  }
  return Status::Ok();
}

}  // namespace

DockerEngine::DockerEngine(std::string socket_url, DockerEngineOptions opts)
    : http_(std::move(socket_url), opts.connect_timeout), opts_(opts) {}

HttpCall DockerEngine::ShortCall(std::string method, std::string path,
                                 std::string json_body) const {
  HttpCall call;
  call.method = std::move(method);
  call.path = std::move(path);
  call.body = std::move(json_body);
  call.timeout = opts_.call_timeout;
  return call;
}

Result<std::string> DockerEngine::Version() {
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", "/version")));
  if (reply.status != 200)
    return EngineHttpError(reply.status, reply.body, "asking the engine's version");
  CW_ASSIGN_OR_RETURN(json j, ParseJson(reply, "GET /version"));
  return "Docker " + j.value("Version", std::string("?")) + " (API " +
         j.value("ApiVersion", std::string("?")) + ")";
}

Result<EngineInfo> DockerEngine::Info() {
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", "/info")));
  if (reply.status != 200) return EngineHttpError(reply.status, reply.body, "asking about its host");
  CW_ASSIGN_OR_RETURN(json j, ParseJson(reply, "GET /info"));
  EngineInfo info;
  auto str = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  info.server_version = str("ServerVersion");
  info.default_runtime = str("DefaultRuntime");
  info.operating_system = str("OperatingSystem");
  info.cgroup_version = str("CgroupVersion");
  if (auto it = j.find("NCPU"); it != j.end() && it->is_number_integer()) info.ncpu = it->get<int>();
  if (auto it = j.find("MemTotal"); it != j.end() && it->is_number_integer()) {
    info.mem_total_bytes = it->get<long long>();
  }
  if (auto it = j.find("Runtimes"); it != j.end() && it->is_object()) {
    for (const auto& [name, rt] : it->items()) {
      info.runtimes.push_back(name);
      info.runtime_details[name] = RuntimeFromInfo(rt);
    }
  }
  if (auto it = j.find("CDISpecDirs"); it != j.end() && it->is_array()) {
    for (const auto& d : *it) {
      if (d.is_string()) info.cdi_spec_dirs.push_back(d.get<std::string>());
    }
  }
  // Podman says "Rootless": true; Docker lists "name=rootless".
  if (auto it = j.find("Rootless"); it != j.end() && it->is_boolean()) info.rootless = it->get<bool>();
  if (auto it = j.find("SecurityOptions"); it != j.end() && it->is_array()) {
    for (const auto& o : *it) info.rootless |= o.is_string() && o.get<std::string>() == "name=rootless";
  }
  return info;
}

Status DockerEngine::CheckRegistry(const std::string& image) {
  CW_ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(image));
  HttpCall call = ShortCall("GET", "/distribution/" + PathEncode(ref.ToString()) + "/json");
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(call));
  if (reply.status == 200) return Status::Ok();
  return EngineHttpError(reply.status, reply.body, "asking its registry");
}

Result<bool> DockerEngine::ImageExists(const std::string& image) {
  CW_ASSIGN_OR_RETURN(HttpReply reply,
                      http_.Do(ShortCall("GET", "/images/" + PathEncode(image) + "/json")));
  if (reply.status == 200) return true;
  if (reply.status == 404) return false;
  return EngineHttpError(reply.status, reply.body, "looking up image " + image);
}

Status DockerEngine::PullImage(const std::string& image, const PullProgressFn& progress) {
  CW_ASSIGN_OR_RETURN(ImageRef ref, ParseImageRef(image));
  HttpCall call;
  call.method = "POST";
  call.path = "/images/create?fromImage=" + UrlEncode(ref.FromImage());
  if (!ref.tag.empty()) call.path += "&tag=" + UrlEncode(ref.tag);
  call.low_speed_time = opts_.pull_stall_timeout;
  call.abandon_with_job = true;
  PullStreamParser parser(progress);
  call.on_body = [&parser](std::string_view chunk) {
    parser.Feed(chunk);
    return true;
  };

  Result<HttpReply> reply = http_.Do(call);
  if (!reply.ok()) return reply.status().Prefixed("pulling image " + image);
  if (reply->status == 400) return EngineHttpError(400, reply->body, "pulling image " + image);
  if (reply->status != 200) return PullError(image, EngineErrorMessage(reply->body));
  parser.Finish();
  // The engine reports most failures inside a 200 stream.
  if (!parser.error().empty()) return PullError(image, parser.error());
  return Status::Ok();
}

Result<std::string> DockerEngine::Create(const ContainerSpec& spec) {
  std::string path = "/containers/create";
  if (!spec.name.empty()) path += "?name=" + UrlEncode(spec.name);
  // Replace, not throw, on invalid UTF-8: env and command come from users.
  std::string body = BuildCreateBody(spec).dump(-1, ' ', false, json::error_handler_t::replace);
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("POST", path, std::move(body))));
  if (reply.status == 409 || (reply.status != 201 && !spec.name.empty() &&
                               Contains(EngineErrorMessage(reply.body), "is already in use"))) {
    // The only conflict of a create: the name belongs to another container
    // (Docker answers 409; podman's words are the same).
    return AlreadyExists("creating container " + spec.name + ": " +
                         EngineErrorMessage(reply.body));
  }
  if (reply.status != 201) {
    return EngineHttpError(reply.status, reply.body,
                           "creating a container from image " + spec.image);
  }
  CW_ASSIGN_OR_RETURN(json j, ParseJson(reply, "POST /containers/create"));
  std::string id = j.value("Id", std::string());
  if (id.empty()) return Internal("the Docker engine created a container but sent no Id");
  return id;
}

Status DockerEngine::Start(const std::string& id) {
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("POST", ContainerPath(id) + "/start")));
  if (reply.status == 204 || reply.status == 304) return Status::Ok();  // 304: already running
  if (Status bad = CommandCannotRun(reply.body); !bad.ok()) return bad;
  return EngineHttpError(reply.status, reply.body, "starting container " + id);
}

Status DockerEngine::StartAndStream(const std::string& id, const OutputFn& output,
                                    const std::function<void()>& on_started) {
  // Held from the start call until on_started returns, so output waits for it.
  // The one lock in the engine held across an engine call (Start), on
  // purpose: only the reader thread's output waits on it, and Start is a call
  // of its own that never waits for the attach stream to be read, so it
  // cannot deadlock.
  std::mutex output_mu;
  StreamDemuxer demux([&](StreamKind kind, std::string_view data) {
    std::lock_guard lock(output_mu);
    output(kind, data);
  });
  std::exception_ptr output_error;  // thrown by `output`; must not cross curl's C frames

  std::mutex mu;
  std::condition_variable cv;
  long attach_status = 0;
  std::optional<Result<HttpReply>> attach_result;
  std::atomic<bool> cancel{false};

  HttpCall attach;
  attach.method = "POST";
  // No Upgrade header: the engine answers 200 and streams raw until the
  // container ends, then closes, which curl takes as the end of the body.
  attach.path = ContainerPath(id) + "/attach?stream=1&stdout=1&stderr=1";
  attach.cancel = &cancel;
  attach.on_headers = [&](long status) {
    std::lock_guard lock(mu);
    attach_status = status;
    cv.notify_all();
  };
  attach.on_body = [&](std::string_view chunk) {
    try {
      demux.Feed(chunk);
      return true;
    } catch (...) {
      output_error = std::current_exception();
      return false;
    }
  };

  std::thread reader([&] {
    Result<HttpReply> r = http_.Do(attach);
    std::lock_guard lock(mu);
    attach_result = std::move(r);
    cv.notify_all();
  });
  // If on_started throws, the reader still has to go before the locals it uses.
  struct Joiner {
    std::thread& thread;
    std::atomic<bool>& cancel;
    ~Joiner() {
      if (thread.joinable()) {
        cancel = true;
        thread.join();
      }
    }
  } joiner{reader, cancel};

  bool answered;
  {
    std::unique_lock lock(mu);
    answered = cv.wait_for(lock, opts_.call_timeout,
                           [&] { return attach_status != 0 || attach_result.has_value(); });
  }
  if (!answered) {
    cancel = true;
    reader.join();
    return Timeout("the Docker engine did not answer attaching to container " + id + " within " +
                   std::to_string(opts_.call_timeout.count()) + " s");
  }
  if (attach_status != 200) {  // no stream: an error answer, or no answer at all
    reader.join();
    if (!attach_result->ok()) return attach_result->status();
    // Podman creates the container's process as it attaches: a command not
    // in the image is refused here, not at the start.
    if (Status bad = CommandCannotRun((*attach_result)->body); !bad.ok()) return bad;
    return EngineHttpError((*attach_result)->status, (*attach_result)->body,
                           "attaching to container " + id);
  }

  Status started;
  {
    std::lock_guard lock(output_mu);
    started = DockerEngine::Start(id);
    if (started.ok() && on_started) on_started();
  }
  if (!started.ok()) {
    // The engine closes the stream of a container that failed to start, but a
    // stream left open would hang us here for good.
    cancel = true;
    reader.join();
    return started;
  }
  reader.join();
  if (output_error) std::rethrow_exception(output_error);
  if (!attach_result->ok()) {
    return attach_result->status().Prefixed("streaming the output of container " + id);
  }
  return Status::Ok();
}

Result<int> DockerEngine::Wait(const std::string& id, std::chrono::seconds timeout) {
  HttpCall call;
  call.method = "POST";
  call.path = ContainerPath(id) + "/wait";
  if (timeout.count() > 0) call.timeout = timeout;
  Result<HttpReply> reply = http_.Do(call);
  if (!reply.ok()) {
    if (reply.status().code() == Code::kTimeout) {
      return Timeout("container " + id + " did not stop within " + std::to_string(timeout.count()) +
                     " s");
    }
    return reply.status();
  }
  if (reply->status != 200)
    return EngineHttpError(reply->status, reply->body, "waiting for container " + id);
  CW_ASSIGN_OR_RETURN(json j, ParseJson(*reply, "waiting for container " + id));
  if (auto err = j.find("Error"); err != j.end() && err->is_object()) {
    std::string message = err->value("Message", std::string());
    if (!message.empty()) return Internal("waiting for container " + id + ": " + message);
  }
  auto code = j.find("StatusCode");
  if (code == j.end() || !code->is_number_integer()) {
    return Internal("the Docker engine's answer to waiting for container " + id +
                    " has no StatusCode");
  }
  return code->get<int>();
}

Result<ContainerState> DockerEngine::Inspect(const std::string& id, bool with_size) {
  const std::string what = "inspecting container " + id;
  CW_ASSIGN_OR_RETURN(HttpReply reply,
                      http_.Do(ShortCall("GET", ContainerPath(id) + (with_size ? "/json?size=1" : "/json"))));
  if (reply.status != 200) return EngineHttpError(reply.status, reply.body, what);
  auto state = ParseInspectBody(reply.body);
  if (!state.ok()) return state.status().Prefixed(what);
  return state;
}

Result<ContainerStats> DockerEngine::Stats(const std::string& id) {
  const std::string what = "reading the stats of container " + id;
  // one-shot: one sample at once, without the engine's 1 s wait for a
  // second one (CPU percentages, which the worker does not use).
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", ContainerPath(id) +
                                                                     "/stats?stream=false&one-shot=true")));
  if (reply.status != 200) return EngineHttpError(reply.status, reply.body, what);
  auto stats = ParseStatsBody(reply.body);
  if (!stats.ok()) return stats.status().Prefixed(what);
  return stats;
}

Result<std::vector<ImageInfo>> DockerEngine::ListImages() {
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", "/images/json?shared-size=1")));
  if (reply.status != 200) return EngineHttpError(reply.status, reply.body, "listing images");
  return ParseImagesBody(reply.body);
}

Result<long long> DockerEngine::ImageStoreBytes() {
  // type=image (API 1.42+; older engines answer everything, which is slower
  // but holds the same LayersSize).
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", "/system/df?type=image")));
  if (reply.status != 200) {
    return EngineHttpError(reply.status, reply.body, "asking the engine's disk usage");
  }
  return ParseLayersSize(reply.body);
}

Status DockerEngine::RemoveImage(const std::string& image) {
  // No force: an image a container uses (ours or anyone's) stays.
  CW_ASSIGN_OR_RETURN(HttpReply reply,
                      http_.Do(ShortCall("DELETE", "/images/" + PathEncode(image))));
  if (reply.status == 200 || reply.status == 404) return Status::Ok();
  return EngineHttpError(reply.status, reply.body, "removing image " + image);
}

Status DockerEngine::ImportImage(const std::string& reference, std::string_view layer_tar) {
  // The whole reference in `repo`, which may hold the tag: podman ignores
  // a separate `tag` parameter on an import.
  HttpCall call = ShortCall("POST", "/images/create?fromSrc=-&repo=" + UrlEncode(reference));
  call.body.assign(layer_tar);
  call.content_type = "application/x-tar";
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(call));
  if (reply.status != 200) return EngineHttpError(reply.status, reply.body, "importing " + reference);
  // Like a pull, an import reports its failure inside a 200 stream.
  PullStreamParser parser(nullptr);
  parser.Feed(reply.body);
  parser.Finish();
  if (!parser.error().empty()) return Internal("importing " + reference + ": " + parser.error());
  return Status::Ok();
}

Status DockerEngine::EnsureNetwork(const std::string& name,
                                   const std::map<std::string, std::string>& labels) {
  CW_ASSIGN_OR_RETURN(HttpReply found,
                      http_.Do(ShortCall("GET", "/networks/" + UrlEncode(name))));
  if (found.status == 200) return Status::Ok();
  if (found.status != 404) {
    return EngineHttpError(found.status, found.body, "looking up network " + name);
  }
  json body = {
      {"Name", name},
      {"Driver", "bridge"},
      {"CheckDuplicate", true},
      // Docker's switch for traffic between the bridge's containers (podman
      // has none, and warns), and podman's for traffic between networks
      // (Docker keeps bridges apart anyway, and stores it as a label).
      {"Options", {{"com.docker.network.bridge.enable_icc", "false"}, {"isolate", "true"}}},
      {"Labels", labels},
  };
  CW_ASSIGN_OR_RETURN(HttpReply made,
                      http_.Do(ShortCall("POST", "/networks/create", body.dump())));
  if (made.status == 201) return Status::Ok();
  // Another worker on this host made it meanwhile.
  if (made.status == 409) return Status::Ok();
  return EngineHttpError(made.status, made.body, "making network " + name);
}

Result<std::vector<std::string>> DockerEngine::NetworkSubnets(const std::string& name) {
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", "/networks/" + UrlEncode(name))));
  if (reply.status != 200) {
    return EngineHttpError(reply.status, reply.body, "looking up network " + name);
  }
  CW_ASSIGN_OR_RETURN(json j, ParseJson(reply, "GET /networks/" + name));
  std::vector<std::string> subnets;
  const json* configs = nullptr;
  if (j.is_object() && j.contains("IPAM") && j["IPAM"].is_object()) {
    const json& ipam = j["IPAM"];
    if (ipam.contains("Config") && ipam["Config"].is_array()) configs = &ipam["Config"];
  }
  if (configs) {
    for (const json& c : *configs) {
      if (c.is_object() && c.contains("Subnet") && c["Subnet"].is_string()) {
        subnets.push_back(c["Subnet"].get<std::string>());
      }
    }
  }
  return subnets;
}

Status DockerEngine::Kill(const std::string& id) {
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("POST", ContainerPath(id) + "/kill")));
  if (reply.status == 204 || reply.status == 404) return Status::Ok();
  // Already stopped is what Kill wanted. Engines answer it with 409 or 500,
  // in their own words (podman: "can only kill running containers").
  const std::string message = EngineErrorMessage(reply.body);
  if (Contains(message, "is not running") || Contains(message, "can only kill running")) {
    return Status::Ok();
  }
  return EngineHttpError(reply.status, reply.body, "killing container " + id);
}

Status DockerEngine::Remove(const std::string& id, bool force) {
  std::string path = ContainerPath(id) + (force ? "?force=1&v=1" : "?v=1");
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("DELETE", path)));
  if (reply.status == 204 || reply.status == 404) return Status::Ok();
  // Another caller (a cleanup sweep) is removing it already.
  if (reply.status == 409 && Contains(EngineErrorMessage(reply.body), "already in progress")) {
    return Status::Ok();
  }
  return EngineHttpError(reply.status, reply.body, "removing container " + id);
}

Result<std::vector<std::string>> DockerEngine::ListByLabel(const std::string& key,
                                                           const std::string& value) {
  json filters = {{"label", json::array({key + "=" + value})}};
  std::string path = "/containers/json?all=1&filters=" +
                     UrlEncode(filters.dump(-1, ' ', false, json::error_handler_t::replace));
  CW_ASSIGN_OR_RETURN(HttpReply reply, http_.Do(ShortCall("GET", path)));
  if (reply.status != 200) {
    return EngineHttpError(reply.status, reply.body, "listing containers labelled " + key);
  }
  CW_ASSIGN_OR_RETURN(json j, ParseJson(reply, "listing containers"));
  if (!j.is_array()) return Internal("the Docker engine's container list is not a list");
  std::vector<std::string> ids;
  for (const json& c : j) {
    if (c.is_object() && c.contains("Id") && c["Id"].is_string())
      ids.push_back(c["Id"].get<std::string>());
  }
  return ids;
}

}  // namespace cw
