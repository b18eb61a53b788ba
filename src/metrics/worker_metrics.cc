#include "metrics/worker_metrics.h"

#include <utility>

namespace cw::metrics {

#ifndef CW_VERSION
#define CW_VERSION "dev"
#endif

std::string BuildVersion() { return CW_VERSION; }

namespace {

// 1 MiB to 1 TiB by factors of 4: a small scorer to a large model.
std::vector<double> MemoryBuckets() {
  std::vector<double> out;
  for (double b = 1 << 20; b <= 1099511627776.0; b *= 4) out.push_back(b);
  return out;
}

}  // namespace

WorkerMetrics::WorkerMetrics(int slots, const std::string& version) {
  const std::string p = "codabench_worker_";
  started_ = registry_.Counter(p + "jobs_started_total", "Jobs started, by stage.", {"stage"});
  finished_ = registry_.Counter(p + "jobs_finished_total",
                                "Jobs ended, by stage and outcome (succeeded, failed, cancelled).",
                                {"stage", "outcome"});
  stage_seconds_ = registry_.Histogram(
      p + "job_stage_seconds",
      "Time a job spent in each step (fetch, unzip, pull, start, programs, upload) and in all "
      "(total).",
      {"stage", "step"}, DurationBuckets());
  slots_ = registry_.Gauge(p + "slots", "Job slots: jobs this worker runs at once.");
  registry_.Set(slots_, slots);
  registry_.GaugeFn(p + "slots_busy", "Slots running a job now.",
                    [this] { return static_cast<double>(busy_count_.load()); });
  broker_connected_ = registry_.Gauge(p + "broker_connected",
                                      "1 while the connection to the broker is up, else 0.");
  registry_.Set(broker_connected_, 0);
  reconnects_ = registry_.Counter(p + "broker_reconnects_total",
                                  "Connections to the broker after the first one.");
  registry_.Inc(reconnects_, {}, 0);
  site_errors_ = registry_.Counter(
      p + "site_errors_total",
      "Calls to the Codabench site and its storage that failed after their retries (and "
      "live-log connections that failed), by call.", {"call"});
  engine_up_ = registry_.Gauge(p + "engine_up",
                               "1 when the container engine answered its last check, else 0.");
  registry_.Set(engine_up_, 0);
  registry_.GaugeFn(p + "process_resident_memory_bytes",
                    "Resident memory of the worker process (not its jobs' containers), bytes.",
                    [] { return ResidentMemoryBytes(); });
  job_peak_memory_ = registry_.Histogram(
      p + "job_peak_memory_bytes",
      "Peak memory of a job's programs (the sum of each program's peak), bytes, by stage.",
      {"stage"}, MemoryBuckets());
  job_cpu_seconds_ = registry_.Histogram(
      p + "job_cpu_seconds", "CPU time of a job's programs together, seconds, by stage.",
      {"stage"}, DurationBuckets());
  job_seconds_ = registry_.Histogram(
      p + "job_seconds", "Wall time of a job, start to final report, by stage and outcome.",
      {"stage", "outcome"}, DurationBuckets());
  downloaded_ = registry_.Counter(p + "downloaded_bytes_total",
                                  "Bytes downloaded from storage (bundles, prediction results).");
  registry_.Inc(downloaded_, {}, 0);
  uploaded_ = registry_.Counter(p + "uploaded_bytes_total",
                                "Bytes uploaded to storage (outputs, logs, detailed results).");
  registry_.Inc(uploaded_, {}, 0);
  image_store_ = registry_.Gauge(
      p + "image_store_bytes",
      "The engine's image store after the last job's cleanup, bytes (with MAX_IMAGE_STORE_GB).");
  build_info_ = registry_.Gauge(p + "build_info", "Always 1; the worker's version as a label.",
                                {"version"});
  registry_.Set(build_info_, {version}, 1);
}

void WorkerMetrics::JobStarted(const std::string& stage) {
  ++busy_count_;
  registry_.Inc(started_, {stage});
}

void WorkerMetrics::JobFinished(const std::string& stage, const std::string& outcome,
                                const StepSeconds& t) {
  --busy_count_;
  registry_.Inc(finished_, {stage, outcome});
  const std::pair<const char*, double> steps[] = {
      {"fetch", t.fetch},       {"unzip", t.unzip},   {"pull", t.pull},  {"start", t.start},
      {"programs", t.programs}, {"upload", t.upload}, {"total", t.total}};
  for (const auto& [step, seconds] : steps) {
    if (seconds > 0 || std::string(step) == "total") {
      registry_.Observe(stage_seconds_, {stage, step}, seconds);
    }
  }
}

void WorkerMetrics::JobUsed(const std::string& stage, const std::string& outcome,
                            const JobUsage& usage) {
  if (usage.peak_memory_bytes) {
    registry_.Observe(job_peak_memory_, {stage}, *usage.peak_memory_bytes);
  }
  if (usage.cpu_seconds) registry_.Observe(job_cpu_seconds_, {stage}, *usage.cpu_seconds);
  registry_.Observe(job_seconds_, {stage, outcome}, usage.wall_seconds);
}

void WorkerMetrics::SiteError(const std::string& call) { registry_.Inc(site_errors_, {call}); }

void WorkerMetrics::Downloaded(double bytes) { registry_.Inc(downloaded_, {}, bytes); }

void WorkerMetrics::Uploaded(double bytes) { registry_.Inc(uploaded_, {}, bytes); }

void WorkerMetrics::WatchCacheBytes(std::function<double()> read) {
  registry_.GaugeFn("codabench_worker_cache_bytes",
                    "Size of the bundle cache (input and reference data), bytes, read at each "
                    "scrape.",
                    std::move(read));
}

void WorkerMetrics::ImageStoreBytes(double bytes) { registry_.Set(image_store_, bytes); }

void WorkerMetrics::BrokerState(bool connected) {
  MutexLock lock(mu_);
  if (connected && !broker_connected_now_) {
    if (broker_ever_connected_) registry_.Inc(reconnects_);
    broker_ever_connected_ = true;
  }
  broker_connected_now_ = connected;
  registry_.Set(broker_connected_, connected ? 1 : 0);
}

void WorkerMetrics::EngineCheck(bool ok, const std::string& reason, Clock::time_point now) {
  MutexLock lock(mu_);
  engine_ok_ = ok;
  engine_reason_ = reason;
  engine_checked_ = now;
  registry_.Set(engine_up_, ok ? 1 : 0);
}

void WorkerMetrics::ShuttingDown() {
  MutexLock lock(mu_);
  shutting_down_ = true;
}

bool WorkerMetrics::Ready(std::string* reason, Clock::time_point now) const {
  MutexLock lock(mu_);
  std::string why;
  if (shutting_down_) {
    why = "shutting down: no new jobs";
  } else if (!broker_connected_now_) {
    why = broker_ever_connected_ ? "the broker connection is down"
                                 : "not connected to the broker yet";
  } else if (!engine_ok_) {
    why = "the container engine did not answer: " + engine_reason_;
  } else if (now - engine_checked_ > engine_max_age_) {
    why = "the container engine's last check is stale (a check hangs)";
  }
  // One line: the reason may carry the engine's own words.
  for (char& c : why) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (reason) *reason = why;
  return why.empty();
}

std::map<std::string, HttpHandler> WorkerMetrics::Handlers() const {
  return {
      {"/metrics",
       [this] { return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", Render()}; }},
      {"/healthz", [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; }},
      {"/readyz",
       [this] {
         std::string reason;
         if (Ready(&reason)) return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
         return HttpResponse{503, "text/plain; charset=utf-8", reason + "\n"};
       }},
  };
}

// --- GPU figures ---

GpuMetrics& WorkerMetrics::EnableGpus() {
  if (!gpus_) gpus_ = std::make_unique<GpuMetrics>(registry_);
  return *gpus_;
}

}  // namespace cw::metrics
