// The worker's own metrics (prefix codabench_worker_) and the answers of
// /metrics, /healthz and /readyz. serve.cc feeds it: jobs from the slots'
// job function, the broker connection from Worker's hook, the engine from a
// periodic check, failed site calls from the job's reporter.
//
// Thread rules: every method may be called from any thread, but EnableGpus,
// which is for start-up, before anything records. The families' indexes and
// gpus_ are set in the constructor and EnableGpus and only read after;
// registry_ has its own lock; mu_ guards the readiness state.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/thread_annotations.h"
#include "metrics/gpu_metrics.h"
#include "metrics/http_server.h"
#include "metrics/registry.h"

namespace cw::metrics {

// A job's time per step, in seconds (job/job_runner.h's JobTimings).
struct StepSeconds {
  double fetch = 0, unzip = 0, pull = 0, start = 0, programs = 0, upload = 0, total = 0;
};

// What a job's programs used (job/program_files.h's ProgramOutcome, both
// programs together); a figure the engine did not give is none.
struct JobUsage {
  std::optional<double> peak_memory_bytes;  // the sum of each program's peak: they run side by side
  std::optional<double> cpu_seconds;
  double wall_seconds = 0;  // the job from start to its final report
};

// The worker's version (the project's, from CMake).
std::string BuildVersion();

class WorkerMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  explicit WorkerMetrics(int slots, const std::string& version = BuildVersion());

  // stage: "prediction" or "scoring"; outcome: "succeeded", "failed",
  // "cancelled".
  void JobStarted(const std::string& stage);
  // Each step's time goes into the histogram when the job reached it (its
  // time is above 0); "total" always does.
  void JobFinished(const std::string& stage, const std::string& outcome, const StepSeconds& t);
  // The job's resource use and wall time, by stage (and outcome for the time).
  void JobUsed(const std::string& stage, const std::string& outcome, const JobUsage& usage);
  // A call to the site that failed for good (after its retries); call:
  // "status", "md5", "error", "scores", "download", "upload", "bad_job";
  // "websocket" for each failed or lost live-log connection.
  void SiteError(const std::string& call);
  // Bytes moved from and to storage (signed URLs), counted once a transfer
  // succeeded.
  void Downloaded(double bytes);
  void Uploaded(double bytes);
  // The bundle cache's size, read at each scrape.
  void WatchCacheBytes(std::function<double()> read);
  // The engine's image store, measured after a job's cleanup (only with
  // MAX_IMAGE_STORE_GB: the measure is a slow engine call).
  void ImageStoreBytes(double bytes);

  // Broker connection changes; a connection after the first is a reconnect.
  void BrokerState(bool connected);
  // The result of a check of the container engine; `max_age`: how long the
  // answer counts for readiness (a check that hangs makes it stale).
  void EngineCheck(bool ok, const std::string& reason, Clock::time_point now = Clock::now());
  void set_engine_max_age(std::chrono::milliseconds age) {
    MutexLock lock(mu_);
    engine_max_age_ = age;
  }

  // A warm shutdown began: no new jobs, so not ready any more.
  void ShuttingDown();

  // Ready: not shutting down, the broker is connected and the engine answered its last check,
  // recently. Otherwise the one-line reason.
  bool Ready(std::string* reason, Clock::time_point now = Clock::now()) const;

  std::string Render() const { return registry_.Render(); }
  const Registry& registry() const { return registry_; }
  int jobs_finished_family() const { return finished_; }

  // /metrics, /healthz, /readyz.
  std::map<std::string, HttpHandler> Handlers() const;

  // --- GPU figures (gpu_metrics.h) ---
  // Adds the GPU families; a worker without GPU figures never calls it, so
  // its /metrics has none. Call once, before anything records into them.
  GpuMetrics& EnableGpus();
  GpuMetrics* gpus() const { return gpus_.get(); }  // null until enabled

 private:
  Registry registry_;
  int started_, finished_, stage_seconds_, slots_, broker_connected_, reconnects_,
      site_errors_, engine_up_, build_info_;
  int job_peak_memory_, job_cpu_seconds_, job_seconds_, downloaded_, uploaded_, image_store_;
  std::atomic<int> busy_count_{0};

  // The readiness state. Held while recording into registry_ (whose own lock
  // comes second, never the other way).
  mutable Mutex mu_;
  bool shutting_down_ GUARDED_BY(mu_) = false;
  bool broker_connected_now_ GUARDED_BY(mu_) = false;
  bool broker_ever_connected_ GUARDED_BY(mu_) = false;
  bool engine_ok_ GUARDED_BY(mu_) = false;
  std::string engine_reason_ GUARDED_BY(mu_) = "the container engine has not been checked yet";
  Clock::time_point engine_checked_ GUARDED_BY(mu_){};
  std::chrono::milliseconds engine_max_age_ GUARDED_BY(mu_){std::chrono::seconds(60)};

  // --- GPU figures ---
  std::unique_ptr<GpuMetrics> gpus_;
};

}  // namespace cw::metrics
