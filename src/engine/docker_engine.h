// ContainerEngine over the Docker Engine API (also Podman's compatible one),
// spoken with libcurl on the engine's socket, not through the docker CLI.
// Thread-safe: every call makes its own connection.
#pragma once

#include <chrono>
#include <string>

#include "engine/docker_http.h"
#include "engine/engine.h"

namespace cw {

struct DockerEngineOptions {
  std::chrono::seconds connect_timeout{5};
  // Inspect, create, start, kill, remove, list, version.
  std::chrono::seconds call_timeout{60};
  // A pull has no time limit, as images can be many GB, but fails when less
  // than one byte a second arrives for this long.
  std::chrono::seconds pull_stall_timeout{300};
};

class DockerEngine : public ContainerEngine {
 public:
  // socket_url: "unix:///var/run/docker.sock", a socket path, or "tcp://host:port".
  explicit DockerEngine(std::string socket_url, DockerEngineOptions opts = {});

  Result<std::string> Version() override;
  Result<bool> ImageExists(const std::string& image) override;
  Result<EngineInfo> Info() override;
  Status CheckRegistry(const std::string& image) override;
  Status PullImage(const std::string& image, const PullProgressFn& progress) override;
  Result<std::string> Create(const ContainerSpec& spec) override;
  // Attaches before starting, so no output is lost. `on_started` runs before
  // any output is delivered and never at the same time as `output`, which is
  // called on a thread of the engine's. A command that cannot run (not in the
  // image) gives InvalidInput.
  Status StartAndStream(const std::string& id, const OutputFn& output,
                        const std::function<void()>& on_started) override;
  // timeout <= 0 waits without a limit.
  Result<int> Wait(const std::string& id, std::chrono::seconds timeout) override;
  Result<ContainerState> Inspect(const std::string& id, bool with_size) override;
  Result<ContainerStats> Stats(const std::string& id) override;
  Result<std::vector<ImageInfo>> ListImages() override;
  Result<long long> ImageStoreBytes() override;
  Status RemoveImage(const std::string& image) override;
  Status ImportImage(const std::string& reference, std::string_view layer_tar) override;
  Status EnsureNetwork(const std::string& name,
                       const std::map<std::string, std::string>& labels) override;
  Result<std::vector<std::string>> NetworkSubnets(const std::string& name) override;
  Status Start(const std::string& id) override;
  Status Kill(const std::string& id) override;
  Status Remove(const std::string& id, bool force) override;
  Result<std::vector<std::string>> ListByLabel(const std::string& key,
                                               const std::string& value) override;

 private:
  HttpCall ShortCall(std::string method, std::string path, std::string json_body = {}) const;

  DockerHttp http_;
  DockerEngineOptions opts_;
};

}  // namespace cw
