// In-memory stand-ins for the engine, storage and reporter, so the pipeline's
// logic is tested fast and without the outside world. Header-only; tests only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "archive/zip.h"
#include "common/abandon.h"
#include "engine/engine.h"
#include "job/gpu_usage.h"
#include "report/reporter.h"
#include "storage/storage.h"

namespace cw::testing {

// A program the fake engine "runs": gets the spec (mounts tell it where its
// folders are), emits output, returns its exit code. `killed` turns true on Kill.
using FakeProgram =
    std::function<int(const ContainerSpec&, const OutputFn&, const std::atomic<bool>& killed)>;

class FakeEngine : public ContainerEngine {
 public:
  std::set<std::string> images;  // images "on the machine"
  Status pull_status;            // what a pull returns
  std::map<std::string, FakeProgram> programs;  // by label org.codabench.kind
  Status start_status;           // non-OK: StartAndStream fails like a bad command
  Status wait_status;            // non-OK: Wait fails (the engine lost the container)
  std::set<std::string> oom_kinds;  // kinds whose containers Inspect reports OOM-killed
  long long writable_bytes = -1;    // what Inspect(with_size) says of every container
  bool drops_device_requests = false;  // as Podman 4's Docker API: Inspect says none
  ContainerStats stats;             // what Stats says of every running container

  // Recorded calls.
  std::vector<ContainerSpec> created;
  std::vector<std::string> pulled, killed_ids, removed, refused_names;

  Result<std::string> Version() override { return std::string("Fake 1.0"); }
  Result<bool> ImageExists(const std::string& image) override {
    std::lock_guard<std::mutex> lock(mu_);
    return images.count(image) > 0;
  }
  // Called first in each pull, outside the lock, on the pulling thread.
  std::function<void()> pull_hook;

  Status PullImage(const std::string& image, const PullProgressFn& progress) override {
    if (pull_hook) pull_hook();
    std::lock_guard<std::mutex> lock(mu_);
    pulled.push_back(image);
    if (pull_status.ok()) {
      images.insert(image);
      if (progress) progress({"layer1", "Pull complete", 1, 1});
    }
    return pull_status;
  }
  Result<std::string> Create(const ContainerSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!images.count(spec.image)) return NotFound("No such image: " + spec.image);
    // A name is taken while its container is there (as in the engine).
    bool taken = false;
    for (const auto& entry : state_) {
      taken = taken || (!spec.name.empty() && entry.second->spec.name == spec.name);
    }
    if (taken) {
      refused_names.push_back(spec.name);
      return AlreadyExists("Conflict. The container name \"/" + spec.name + "\" is already in use");
    }
    std::string id = "c" + std::to_string(created.size());
    created.push_back(spec);
    state_[id] = std::make_shared<State>();
    state_[id]->spec = spec;
    return id;
  }
  Status StartAndStream(const std::string& id, const OutputFn& output,
                        const std::function<void()>& on_started) override {
    std::shared_ptr<State> s = Get(id);
    if (!s) return NotFound("no container " + id);
    if (!start_status.ok()) {
      s->exit_code = 127;
      s->exited = true;
      return start_status;
    }
    if (on_started) on_started();
    auto it = programs.find(s->spec.labels.at("org.codabench.kind"));
    int code = it == programs.end() ? 0 : it->second(s->spec, output, s->killed);
    if (s->killed) code = 137;
    s->exit_code = code;
    s->exited = true;
    return Status::Ok();
  }
  Result<int> Wait(const std::string& id, std::chrono::seconds) override {
    std::shared_ptr<State> s = Get(id);
    if (!s) return NotFound("no container " + id);
    if (!wait_status.ok()) return wait_status;
    return s->exit_code;
  }
  Result<ContainerState> Inspect(const std::string& id, bool with_size) override {
    std::shared_ptr<State> s = Get(id);
    if (!s) return NotFound("no container " + id);
    ContainerState st;
    st.running = !s->exited;
    st.exit_code = s->exit_code;
    auto kind = s->spec.labels.find("org.codabench.kind");
    st.oom_killed = kind != s->spec.labels.end() && oom_kinds.count(kind->second) > 0;
    if (with_size) st.writable_bytes = writable_bytes;
    st.device_requests =
        drops_device_requests ? 0 : static_cast<int>(s->spec.device_requests.size());
    return st;
  }
  Result<ContainerStats> Stats(const std::string& id) override {
    std::shared_ptr<State> s = Get(id);
    if (!s || s->exited) return NotFound("no running container " + id);
    return stats;
  }
  Status Kill(const std::string& id) override {
    std::shared_ptr<State> s = Get(id);
    std::lock_guard<std::mutex> lock(mu_);
    killed_ids.push_back(id);
    if (s) s->killed = true;
    return Status::Ok();
  }
  Status Remove(const std::string& id, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    removed.push_back(id);
    state_.erase(id);
    return Status::Ok();
  }
  // Imports and networks, recorded; `network_status` non-OK: no network can be made.
  std::vector<std::string> imported, networks;
  std::map<std::string, std::vector<std::string>> subnets;  // NetworkSubnets' answers
  Status network_status;
  Status ImportImage(const std::string& reference, std::string_view) override {
    std::lock_guard<std::mutex> lock(mu_);
    imported.push_back(reference);
    images.insert(reference);
    return Status::Ok();
  }
  Status EnsureNetwork(const std::string& name,
                       const std::map<std::string, std::string>&) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (network_status.ok()) networks.push_back(name);
    return network_status;
  }
  Result<std::vector<std::string>> NetworkSubnets(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = subnets.find(name);
    if (it == subnets.end()) return NotFound("no network " + name);
    return it->second;
  }
  Result<std::vector<std::string>> ListByLabel(const std::string& key,
                                               const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> ids;
    for (auto& [id, s] : state_) {
      auto it = s->spec.labels.find(key);
      if (it != s->spec.labels.end() && it->second == value) ids.push_back(id);
    }
    return ids;
  }
  size_t live_containers() {
    std::lock_guard<std::mutex> lock(mu_);
    return state_.size();
  }

  // Host path of a container path in a spec's mounts ("" when not mounted).
  static std::string HostPathOf(const ContainerSpec& spec, const std::string& target) {
    for (const auto& m : spec.mounts) {
      if (m.container_path == target) return m.host_path;
    }
    return "";
  }

 private:
  struct State {
    ContainerSpec spec;
    std::atomic<bool> killed{false};
    std::atomic<bool> exited{false};
    int exit_code = -1;
  };
  std::shared_ptr<State> Get(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = state_.find(id);
    return it == state_.end() ? nullptr : it->second;
  }
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<State>> state_;
};

// Storage over a folder: URL "mem://name" is the file dir/name. Records puts.
class FakeStorage : public Storage {
 public:
  explicit FakeStorage(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
  }
  std::filesystem::path PathOf(const std::string& url) const {
    return dir_ / url.substr(url.find("://") + 3, url.find('?') - url.find("://") - 3);
  }
  // Called first in each fetch, outside the lock.
  std::function<void(const std::string& url)> fetch_hook;

  Status Fetch(const std::string& url, const std::filesystem::path& dest,
               const TransferProgressFn& progress = {}) override {
    if (fetch_hook) fetch_hook(url);
    std::lock_guard<std::mutex> lock(mu_);
    fetched.push_back(url);
    std::error_code ec;
    if (!std::filesystem::exists(PathOf(url))) return NotFound("no object at " + url);
    std::filesystem::copy_file(PathOf(url), dest,
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) return IoError(ec.message());
    if (progress) {
      std::uint64_t size = std::filesystem::file_size(dest, ec);
      progress(size, size);
    }
    return Status::Ok();
  }
  Status Put(const std::string& url, const std::filesystem::path& src,
             const std::string& content_type) override {
    std::lock_guard<std::mutex> lock(mu_);
    puts.push_back({url, content_type});
    std::error_code ec;
    std::filesystem::copy_file(src, PathOf(url), std::filesystem::copy_options::overwrite_existing,
                               ec);
    return ec ? IoError(ec.message()) : Status::Ok();
  }
  bool WasPut(const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [u, t] : puts) {
      if (u == url) return true;
    }
    return false;
  }
  std::string Read(const std::string& url) const {
    std::ifstream in(PathOf(url));
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  std::vector<std::string> fetched;
  std::vector<std::pair<std::string, std::string>> puts;  // url, content type

 private:
  std::filesystem::path dir_;
  std::mutex mu_;
};

// Records everything a job reports.
class RecordingReporter : public Reporter {
 public:
  struct StatusCall {
    JobStatus status;
    std::string details;
  };
  Status UpdateStatus(JobStatus status, const std::string& details) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses.push_back({status, details});
    return Status::Ok();
  }
  Status ReportMd5(const std::string& md5_hex) override {
    md5 = md5_hex;
    return Status::Ok();
  }
  Status ReportError(ErrorType type, const std::string& message, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    errors.push_back({type, message});
    return Status::Ok();
  }
  Status ReportScores(const nlohmann::json& s) override {
    scores = s;
    return scores_status;
  }
  void Log(ProgramKind kind, LogStream stream, std::string_view chunk) override {
    std::lock_guard<std::mutex> lock(mu_);
    logs[{kind, stream}].append(chunk);
  }
  void LiveError(const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    live_errors.push_back(message);
  }
  void DetailedResultsUpdated() override { ++detailed_updates; }

  std::vector<JobStatus> StatusSequence() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<JobStatus> out;
    for (auto& s : statuses) out.push_back(s.status);
    return out;
  }

  std::vector<StatusCall> statuses;
  std::string md5;
  std::vector<std::pair<ErrorType, std::string>> errors;
  nlohmann::json scores;
  Status scores_status;
  std::map<std::pair<ProgramKind, LogStream>, std::string> logs;
  std::vector<std::string> live_errors;
  std::atomic<int> detailed_updates{0};

 private:
  std::mutex mu_;
};

// A slot's GPUs as the pipeline sees them: every window finishes with
// `usage`; counts the windows begun and finished.
class FakeGpuMeter : public GpuUsageMeter {
 public:
  GpuUsage usage;
  std::atomic<int> begun{0};
  std::atomic<int> finished{0};

  std::unique_ptr<GpuWindow> Begin() override {
    ++begun;
    return std::make_unique<Window>(*this);
  }
  std::string Describe() const override { return "GPUs 2, 3"; }

 private:
  class Window : public GpuWindow {
   public:
    explicit Window(FakeGpuMeter& meter) : meter_(meter) {}
    GpuUsage Finish() override {
      ++meter_.finished;
      return meter_.usage;
    }

   private:
    FakeGpuMeter& meter_;
  };
};

// Writes `text` to `p`, making its folder.
inline void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// The whole of `p` ("" when it cannot be read).
inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Zips `files` (relative path -> content), written under `scratch/name`, and
// stores the zip in `storage` as mem://name; returns that URL.
inline std::string StoreBundle(FakeStorage& storage, const std::filesystem::path& scratch,
                               const std::string& name,
                               const std::map<std::string, std::string>& files) {
  const std::filesystem::path src = scratch / name;
  for (const auto& [rel, text] : files) WriteFile(src / rel, text);
  std::filesystem::create_directories(src);
  if (!CreateZip(src, storage.PathOf("mem://" + name)).ok()) return "";
  return "mem://" + name;
}

// Waits up to 5 s for `flag`; whether it came.
inline bool AwaitFlag(const std::atomic<bool>& flag) {
  for (int i = 0; i < 500 && !flag; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return flag;
}

// As a transfer or the engine's pull call does: it ends once its job gives up
// on it (or after 10 s). True when it was given up on.
inline bool AwaitAbandoned() {
  for (int i = 0; i < 1000 && !AbandonScope::Abandoned(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return AbandonScope::Abandoned();
}

}  // namespace cw::testing
