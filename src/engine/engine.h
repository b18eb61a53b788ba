// The container engine as the job pipeline sees it. The real one speaks the
// Docker Engine API over a unix socket (docker_engine.h); tests use fakes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cw {

struct Mount {
  std::string host_path;       // as the engine's daemon sees it
  std::string container_path;
  bool read_only = false;
};

// A GPU request, either form that real installs use.
struct DeviceRequest {
  std::string driver;                   // "nvidia" or "cdi"
  std::vector<std::string> device_ids;  // GPU UUIDs / indexes, or CDI names "nvidia.com/gpu=0"
  std::vector<std::vector<std::string>> capabilities;  // [["gpu"]] for the nvidia driver
  int count = 0;                        // used only when device_ids is empty (-1 = all)
};

struct ContainerSpec {
  std::string name;                      // optional; engine picks one when empty
  std::string image;
  std::vector<std::string> cmd;          // e.g. {"sh", "-c", command}
  std::vector<std::string> entrypoint;   // empty: the image's
  std::string working_dir;
  std::vector<std::string> env;          // "KEY=value"
  std::map<std::string, std::string> labels;
  std::vector<Mount> mounts;
  std::vector<std::string> cap_drop;
  std::vector<std::string> cap_add;      // after cap_drop: only the worker's own holders
  std::vector<std::string> security_opt; // e.g. "no-new-privileges"
  bool network_disabled = false;         // NetworkMode "none" (wins over network_mode)
  std::string network_mode;              // "" = the engine's default network; a network's
                                         // name; "container:<id>" to join that one's namespace
  std::string hostname;                  // "" = the engine's (the id's first 12 digits)
  bool open_stdin = false;               // keep stdin open (nobody writes to it)
  std::vector<DeviceRequest> device_requests;
  std::string ipc_mode;                  // "" = engine default, "host", "private", ...
  long long shm_size_bytes = 0;          // 0 = engine default
  long long memory_bytes = 0;            // 0 = no limit
  double nano_cpus = 0;                  // 0 = no limit (in CPUs, e.g. 2.5)
  std::string cpuset_cpus;               // "" = any
  long long pids_limit = 0;              // 0 = engine default; most processes at once
  long long nofile_limit = 0;            // 0 = engine default; open files (soft = hard)
  std::string runtime;                   // "" = the engine's default; an OCI runtime it knows
  // "" = the daemon's default. Jobs use "none": the worker keeps the output
  // itself, and the daemon then neither stores a second copy on its disk
  // nor spends time writing it (a 200 MiB burst ran 17 s -> 10 s).
  std::string log_driver;
};

// How a container ended, from the engine's inspect call.
struct ContainerState {
  bool running = false;
  int exit_code = 0;
  bool oom_killed = false;        // the kernel killed it for passing its memory limit
  std::string error;              // the engine's own error (e.g. a failed start)
  long long writable_bytes = -1;  // its writable layer's size, when asked for; -1 unknown
  int device_requests = -1;       // HostConfig.DeviceRequests the engine kept; -1 unknown
};

// An image in the engine's store (GET /images/json).
struct ImageInfo {
  std::string id;                      // "sha256:..."
  std::vector<std::string> repo_tags;  // "python:3.12", ...; empty for a dangling image
  long long size_bytes = 0;            // with the layers it shares with others
  long long shared_bytes = -1;         // of those, shared; -1 unknown
  long long created_unix = 0;
};

// What a running container uses now (GET /containers/{id}/stats).
struct ContainerStats {
  long long memory_bytes = -1;       // now; -1 unknown
  long long memory_peak_bytes = -1;  // the kernel's high-water mark (cgroup v1); -1 unknown
  double cpu_seconds = -1;           // CPU time used since it started; -1 unknown
};

enum class StreamKind { kStdout, kStderr };

// Receives a container's output as it is produced. Called from the engine's
// streaming thread; must not block for long.
using OutputFn = std::function<void(StreamKind, std::string_view)>;

// Pull progress, one call per progress message of the engine.
struct PullProgress {
  std::string layer_id;
  std::string status;   // "Downloading", "Extracting", "Pull complete", ...
  long long current = 0;
  long long total = 0;
};
using PullProgressFn = std::function<void(const PullProgress&)>;

// What the engine says about its host (GET /info), for slot planning and
// `doctor`: the daemon's view, which differs from ours when the worker itself
// runs in a container.
struct EngineInfo {
  std::string server_version;
  int ncpu = 0;
  long long mem_total_bytes = 0;
  std::vector<std::string> runtimes;  // "runc", "nvidia", ...
  std::string default_runtime;
  // Each of `runtimes`: its program and the arguments it is run with
  // (daemon.json's "path" and "runtimeArgs"), where the engine says.
  struct Runtime {
    std::string path;
    std::vector<std::string> args;
  };
  std::map<std::string, Runtime> runtime_details;
  std::vector<std::string> cdi_spec_dirs;  // reported by Docker >= 27 when CDI is on
  std::string operating_system;
  std::string cgroup_version;
  // The engine runs as a user, not root: rootless Podman ("Rootless": true)
  // or rootless Docker ("name=rootless" in SecurityOptions).
  bool rootless = false;
};

// What the engine described by `info` cannot enforce, as one sentence for the
// start-up log, `doctor` and each job's log; "" when it enforces every limit
// the worker sets. Rootless on cgroups v1: no memory, CPU or pids limit.
std::string UnenforcedLimits(const EngineInfo& info);

// Whether the engine's stats of a container are that container's own. Not
// rootless on cgroups v1: there a container has no cgroup, and Podman's
// "usage" is the whole host's memory (12 GB for a one-second script here).
bool StatsArePerContainer(const EngineInfo& info);

class ContainerEngine {
 public:
  virtual ~ContainerEngine() = default;

  // "Docker 24.0.7 (API 1.43)" or an Unavailable status that says how to fix it.
  virtual Result<std::string> Version() = 0;

  virtual Result<bool> ImageExists(const std::string& image) = 0;
  virtual Result<EngineInfo> Info() {
    return Unavailable("this container engine does not describe its host");
  }
  // Asks the image's registry for its manifest without pulling it: OK when
  // the registry answers and the engine's credentials are accepted.
  virtual Status CheckRegistry(const std::string& image) {
    return Unavailable("this container engine cannot check " + image + "'s registry");
  }
  // Pulls image; the Status carries the engine's reason (unknown image, no
  // access, registry unreachable) when it fails.
  virtual Status PullImage(const std::string& image, const PullProgressFn& progress) = 0;

  // Returns the container id. AlreadyExists when spec.name is another
  // container's (one being removed counts too).
  virtual Result<std::string> Create(const ContainerSpec& spec) = 0;

  // Starts the container and streams its stdout and stderr, kept apart, to
  // `output` until the container's output ends (it exited or was killed).
  // `on_started` is called once the container runs. Returns when the streams
  // end; the exit code comes from Wait.
  virtual Status StartAndStream(const std::string& id, const OutputFn& output,
                                const std::function<void()>& on_started) = 0;

  // Waits for the container to stop and returns its exit code.
  virtual Result<int> Wait(const std::string& id, std::chrono::seconds timeout) = 0;

  // How the container is or ended. `with_size` also measures its writable
  // layer (the engine walks it: seconds on a big layer, so not in a tight loop).
  virtual Result<ContainerState> Inspect(const std::string& id, bool with_size) {
    (void)with_size;
    return Unavailable("this container engine cannot inspect container " + id);
  }

  // The images in the store, and the bytes all their layers take on disk.
  virtual Result<std::vector<ImageInfo>> ListImages() {
    return Unavailable("this container engine cannot list its images");
  }
  virtual Result<long long> ImageStoreBytes() {
    return Unavailable("this container engine cannot size its image store");
  }
  // Removes an image (by id or name) unless a container uses it: then
  // FailedPrecondition-like InvalidInput, and the image stays.
  virtual Status RemoveImage(const std::string& image) {
    return Unavailable("this container engine cannot remove image " + image);
  }

  // One sample of what a running container uses.
  virtual Result<ContainerStats> Stats(const std::string& id) {
    return Unavailable("this container engine gives no stats for container " + id);
  }

  // Starts the container without attaching to its output (one that must
  // keep running on its own).
  virtual Status Start(const std::string& id) {
    return Unavailable("this container engine cannot start container " + id + " on its own");
  }

  virtual Status Kill(const std::string& id) = 0;
  // Removes the container (force: kill it first if it runs). Not found is OK.
  virtual Status Remove(const std::string& id, bool force) = 0;

  // Loads an image from a tar stream of its one layer (the files of its
  // root folder), as `docker import` does, and names it `reference`.
  virtual Status ImportImage(const std::string& reference, std::string_view layer_tar) {
    (void)layer_tar;
    return Unavailable("this container engine cannot import image " + reference);
  }

  // Makes a bridge network named `name` unless one exists, with traffic
  // between its containers off where the engine can (Docker; podman cannot)
  // and from other networks off (podman's `isolate`; Docker's bridges are);
  // `labels` go on a network it makes. OK when the network exists already,
  // whatever its options (an admin's own).
  virtual Status EnsureNetwork(const std::string& name,
                               const std::map<std::string, std::string>& labels) {
    (void)labels;
    return Unavailable("this container engine cannot make network " + name);
  }

  // The subnets ("10.89.0.0/24", IPv6 too) the engine gives network `name`'s
  // containers addresses in (its IPAM configuration).
  virtual Result<std::vector<std::string>> NetworkSubnets(const std::string& name) {
    return Unavailable("this container engine cannot describe network " + name);
  }

  // Ids of containers (running or not) carrying label key=value.
  virtual Result<std::vector<std::string>> ListByLabel(const std::string& key,
                                                       const std::string& value) = 0;
};

}  // namespace cw
