#include "worker/serve.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "broker/broker_url.h"
#include "common/abandon.h"
#include "common/log.h"
#include "common/units.h"
#include "broker/consumer.h"
#include "engine/docker_engine.h"
#include "gpu/container_options.h"
#include "gpu/gpu_info.h"
#include "gpu/worker_slots.h"
#include "job/job_runner.h"
#include "job/network_holders.h"
#include "metrics/http_server.h"
#include "metrics/worker_metrics.h"
#include "report/reporter.h"
#include "site/http_client.h"
#include "site/http_storage.h"
#include "site/site_reporter.h"
#include "storage/bundle_cache.h"
#include "worker/gpu_figures.h"
#include "worker/status_board.h"
#include "worker/status_socket.h"
#include "worker/worker.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

// SIGTERM/SIGINT: the first asks for a warm shutdown, the second for a cold
// one; SIGQUIT asks for a cold one at once (Celery's convention).
std::atomic<int> g_stop_signals{0};
std::atomic<bool> g_quit{false};
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void OnStopSignal(int) { g_stop_signals.fetch_add(1); }
extern "C" void OnQuitSignal(int) { g_quit = true; }

// The SiteReporter, noting when the last status update went out: with the
// broker thread's "ack ... sent N ms after it was queued", the debug log gives
// the whole window between a job's final report and its ack.
class TimedReporter : public Reporter {
 public:
  // `metrics` (may be null) counts the calls that failed for good; `board`
  // shows the slot's last status.
  TimedReporter(SiteReporter& inner, metrics::WorkerMetrics* metrics, StatusBoard& board, int slot)
      : inner_(inner), metrics_(metrics), board_(board), slot_(slot) {}
  Status UpdateStatus(JobStatus status, const std::string& details) override {
    Status st = Counted("status", inner_.UpdateStatus(status, details));
    last_status_ = std::chrono::steady_clock::now();
    if (st.ok()) board_.JobSiteStatus(slot_, JobStatusName(status));
    return st;
  }
  Status ReportMd5(const std::string& md5_hex) override {
    return Counted("md5", inner_.ReportMd5(md5_hex));
  }
  Status ReportError(ErrorType type, const std::string& message, bool is_scoring) override {
    return Counted("error", inner_.ReportError(type, message, is_scoring));
  }
  Status ReportScores(const nlohmann::json& scores) override {
    return Counted("scores", inner_.ReportScores(scores));
  }
  void Log(ProgramKind kind, LogStream stream, std::string_view chunk) override {
    inner_.Log(kind, stream, chunk);
  }
  void LiveError(const std::string& message) override { inner_.LiveError(message); }
  void DetailedResultsUpdated() override { inner_.DetailedResultsUpdated(); }

  std::optional<std::chrono::steady_clock::time_point> last_status() const {
    return last_status_;
  }

 private:
  // A call given up because the job was revoked or the worker stops is not
  // the site's failure.
  Status Counted(const char* call, Status st) {
    if (!st.ok() && metrics_ && !AbandonScope::Abandoned()) metrics_->SiteError(call);
    return st;
  }

  SiteReporter& inner_;
  metrics::WorkerMetrics* metrics_;
  StatusBoard& board_;
  const int slot_;
  std::optional<std::chrono::steady_clock::time_point> last_status_;
};

// Storage that counts for the metrics: the bytes of each transfer that
// succeeded (the file's size, so nothing is buffered to count), and the
// transfers that failed for good.
class MeteredStorage : public Storage {
 public:
  MeteredStorage(Storage& inner, metrics::WorkerMetrics& metrics)
      : inner_(inner), metrics_(metrics) {}
  Status Fetch(const std::string& url, const fs::path& dest,
               const TransferProgressFn& progress = {}) override {
    Status st = inner_.Fetch(url, dest, progress);
    if (st.ok()) {
      metrics_.Downloaded(static_cast<double>(SizeOf(dest)));
    } else if (!AbandonScope::Abandoned()) {  // a revoke is not the site's failure
      metrics_.SiteError("download");
    }
    return st;
  }
  Status Put(const std::string& url, const fs::path& src, const std::string& type) override {
    Status st = inner_.Put(url, src, type);
    if (st.ok()) {
      metrics_.Uploaded(static_cast<double>(SizeOf(src)));
    } else if (!AbandonScope::Abandoned()) {
      metrics_.SiteError("upload");
    }
    return st;
  }

 private:
  static std::uintmax_t SizeOf(const fs::path& path) {
    std::error_code ec;
    std::uintmax_t size = fs::file_size(path, ec);
    return ec ? 0 : size;
  }
  Storage& inner_;
  metrics::WorkerMetrics& metrics_;
};

// The job's programs together: CPU adds up, and so do peaks, since the
// programs run side by side (a bound on the job's own peak).
metrics::JobUsage UsageOf(const JobResult& result) {
  metrics::JobUsage usage;
  usage.wall_seconds = result.timings.total_s;
  for (const ProgramOutcome* p : {&result.program, &result.ingestion}) {
    if (p->peak_memory_bytes) {
      usage.peak_memory_bytes =
          usage.peak_memory_bytes.value_or(0) + static_cast<double>(*p->peak_memory_bytes);
    }
    if (p->cpu_seconds) usage.cpu_seconds = usage.cpu_seconds.value_or(0) + *p->cpu_seconds;
  }
  return usage;
}

// "0 (GPU-8f6c1a2b-...)" per GPU, and the CPU range, as the start-up log has them.
StatusBoard::SlotInfo SlotInfoOf(const WorkerSlot& slot) {
  StatusBoard::SlotInfo info;
  for (const GpuInfo& gpu : slot.plan.gpus) {
    info.gpus.push_back(gpu.uuid.empty() ? std::to_string(gpu.index)
                                         : std::to_string(gpu.index) + " (" + gpu.uuid + ")");
  }
  info.cpus = slot.plan.cpuset;
  return info;
}

// A job's live sockets flush and close (up to close_grace, 3 s) after its
// final report: done here, on a thread of its own, so that the job's message
// is acked right after the report instead of after the flush.
class ReporterCloser {
 public:
  ReporterCloser() : thread_([this] { Loop(); }) {}
  ~ReporterCloser() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Add(std::unique_ptr<SiteReporter> reporter) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(reporter));
    }
    cv_.notify_all();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_, and nothing left to close
      std::unique_ptr<SiteReporter> reporter = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      reporter.reset();  // Finish(): flush and close its sockets
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<SiteReporter>> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

std::string Hostname() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

// Acks go to the consumer, which carries them out on its own thread.
class ConsumerAcker : public DeliveryAcker {
 public:
  void Attach(QueueConsumer* consumer) { consumer_ = consumer; }
  void Ack(std::uint64_t epoch, std::uint64_t tag) override { consumer_->Ack(epoch, tag); }
  void Reject(std::uint64_t epoch, std::uint64_t tag, bool requeue) override {
    consumer_->Reject(epoch, tag, requeue);
  }

 private:
  QueueConsumer* consumer_ = nullptr;
};

// Containers a previous run of this node left behind (crash, SIGKILL) would
// hold GPUs and disk forever: remove them before taking new jobs.
void RemoveOrphans(ContainerEngine& engine, const std::string& nodename) {
  auto ids = engine.ListByLabel("org.codabench.node", nodename);
  if (!ids.ok()) {
    spdlog::warn("could not list leftover containers: {}", ids.status().message());
    return;
  }
  // The slots' network holders, after the job containers that joined them.
  auto holders = engine.ListByLabel(kLabelHolderNode, nodename);
  if (holders.ok()) ids->insert(ids->end(), holders->begin(), holders->end());
  for (const auto& id : *ids) {
    spdlog::warn("removing container {} left by an earlier run of {}", id.substr(0, 12), nodename);
    (void)engine.Remove(id, true);
  }
}

// True when no live worker listens as `nodename` (its Celery mailbox queue
// has no consumer). When the broker cannot tell, false: sweeping a live
// worker's containers would kill its jobs, leaving leftovers only costs disk
// until the next start.
bool NoOtherLiveNode(const BrokerAddress& address, const std::string& nodename, bool tls_verify,
                     const std::string& ca_file) {
  AmqpClient client;
  Status connected = client.Connect(
      address, ProbeConnectOptions(tls_verify, ca_file, "codabench-worker start-up check"));
  if (!connected.ok()) {
    spdlog::warn("leftovers of an earlier run of {} are not removed this time: cannot ask the "
                 "broker whether another worker uses that name ({})",
                 nodename, connected.message());
    return false;
  }
  auto mailbox = client.InspectQueue(nodename + ".celery.pidbox");
  client.Close();
  if (!mailbox.ok()) {
    if (mailbox.status().code() == Code::kNotFound) return true;
    spdlog::warn("leftovers of an earlier run of {} are not removed this time: {}", nodename,
                 mailbox.status().message());
    return false;
  }
  if (mailbox->consumers > 0) {
    spdlog::warn("another worker already runs as {}: its containers and job folders are left "
                 "alone; give each worker its own --nodename",
                 nodename);
    return false;
  }
  return true;
}

// Checks the container engine every `interval` for /readyz and `status`, on
// a thread of its own (a hung engine must not hold up anything else).
class EngineChecker {
 public:
  using Report = std::function<void(bool ok, const std::string& reason)>;
  EngineChecker(std::string socket, Report report, std::chrono::milliseconds interval)
      : socket_(std::move(socket)), report_(std::move(report)), interval_(interval),
        thread_([this] { Loop(); }) {}
  ~EngineChecker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    DockerEngine engine(socket_);
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
      lock.unlock();
      auto version = engine.Version();
      report_(version.ok(), version.ok() ? "" : version.status().message());
      lock.lock();
    }
  }

  std::string socket_;
  Report report_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace

int Serve(const ServeOptions& options) {
  auto config = LoadConfig(options.env_file, options.overrides);
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return 2;
  }
  // SERIALIZED=true: JSON lines, as the Python worker's loguru writes them.
  ConfigureLogging(config->serialized_logs, config->log_level);
  if (config->broker_url.empty()) {
    spdlog::error("BROKER_URL is not set: give the Codabench queue's broker URL "
                  "(pyamqp://user:password@host:port/vhost) in the environment or .env");
    return 2;
  }
  auto address = ParseBrokerUrl(config->broker_url, config->broker_use_ssl);
  if (!address.ok()) {
    spdlog::error("{}", address.status().message());
    return 2;
  }
  const std::string nodename =
      options.nodename.empty() ? "compute-worker@" + Hostname() : options.nodename;

  DockerEngine engine(config->container_socket);
  auto version = engine.Version();
  if (!version.ok()) {
    spdlog::error("{}", version.status().message());
    return 1;
  }
  // Slots are planned on the engine's host: its CPUs, and the GPUs this
  // process can see (the worker container needs GPU access for that).
  int cpu_count = 0;
  if (auto info = engine.Info(); info.ok()) {
    cpu_count = info->ncpu;
  } else {
    spdlog::warn("the engine did not describe its host ({}); slots are not pinned to CPUs",
                 info.status().message());
  }
  Result<std::vector<GpuInfo>> gpus = std::vector<GpuInfo>{};
  if (WantsGpus(*config)) {
    GpuDiscoveryOptions discovery;
    discovery.log = [](const std::string& line) { spdlog::debug("GPU discovery: {}", line); };
    gpus = DiscoverGpus(discovery);
    if (gpus.ok()) spdlog::info("{}", DescribeGpus(*gpus));
  }
  std::vector<std::string> notes;
  auto slots = PlanWorkerSlots(*config, gpus, cpu_count, &notes);
  if (!slots.ok()) {
    spdlog::error("{}", slots.status().message());
    return slots.status().code() == Code::kInvalidInput ? 2 : 1;
  }
  for (const std::string& note : notes) spdlog::warn("{}", note);
  const int slot_count = static_cast<int>(slots->size());
  spdlog::info("codabench-worker {} on {} (engine {}), broker {}, {} slot(s)", nodename,
               config->host_directory.string(), *version, address->Redacted(), slot_count);
  for (const WorkerSlot& slot : *slots) spdlog::info("{}", DescribeSlot(slot.plan));

  // What `codabench-worker status` shows; outlives everything that feeds it.
  std::vector<StatusBoard::SlotInfo> slot_infos;
  for (const WorkerSlot& slot : *slots) slot_infos.push_back(SlotInfoOf(slot));
  StatusBoard board(nodename, metrics::BuildVersion(), std::move(slot_infos));
  board.EngineState(true, "");  // it answered just above
  const metrics::HttpHandler status_handler = [&board] {
    return metrics::HttpResponse{200, "application/json", board.Json().dump() + "\n"};
  };

  // METRICS_ADDRESS: /metrics, /healthz, /readyz, /status (README "Metrics
  // and health"). Off unless set; listens only where told.
  std::unique_ptr<metrics::WorkerMetrics> metrics;
  std::unique_ptr<metrics::HttpServer> metrics_server;
  if (!config->metrics_address.empty()) {
    metrics = std::make_unique<metrics::WorkerMetrics>(slot_count);
    metrics->EngineCheck(true, "");  // it answered just above
    metrics->set_engine_max_age(std::chrono::seconds(35));
    auto handlers = metrics->Handlers();
    handlers["/status"] = status_handler;
    metrics_server = std::make_unique<metrics::HttpServer>(std::move(handlers));
    Status st = metrics_server->Start(config->metrics_address);
    if (!st.ok()) {
      spdlog::error("{}", st.message());
      return st.code() == Code::kInvalidInput ? 2 : 1;
    }
    spdlog::info("metrics and health on http://{}/metrics, /healthz, /readyz, /status",
                 config->metrics_address);
  }
  EngineChecker engine_checker(
      config->container_socket,
      [&board, m = metrics.get()](bool ok, const std::string& reason) {
        board.EngineState(ok, reason);
        if (m) m->EngineCheck(ok, reason);
      },
      std::chrono::seconds(10));
  if (config->base_directory_doubtful) {
    spdlog::warn("jobs are written to {}: {}", config->base_directory.string(),
                 config->base_directory_reason);
  } else {
    spdlog::info("jobs are written to {}: {}", config->base_directory.string(),
                 config->base_directory_reason);
  }
  // What an earlier run of this node name left (containers, job folders)
  // goes, unless another live worker uses the same name: the default is
  // compute-worker@<hostname>, which two workers on one host share, and its
  // running jobs carry the same labels.
  const bool sweep = NoOtherLiveNode(*address, nodename, options.tls_verify,
                                     config->broker_ssl_ca_certs);
  if (sweep) RemoveOrphans(engine, nodename);

  std::error_code ec;
  fs::create_directories(config->base_directory, ec);
  if (ec) {
    spdlog::error("cannot create {}: {}", config->base_directory.string(), ec.message());
    return 1;
  }
  HttpClientOptions http_options;
  http_options.ca_bundle = config->site_ca_bundle;
  HttpClient http(http_options);
  // Only http(s): a queue message must never make the worker read or write
  // files of the host it runs on.
  HttpStorage http_storage(http);
  std::optional<MeteredStorage> metered;
  if (metrics) metered.emplace(http_storage, *metrics);
  Storage& storage = metered ? static_cast<Storage&>(*metered) : http_storage;
  BundleCache cache(config->base_directory / "cache",
                    CacheBytesFromGb(config->max_cache_dir_size_gb));
  if (metrics) {
    metrics->WatchCacheBytes([&cache] { return static_cast<double>(cache.SizeBytes()); });
  }

  JobEnvironment env;
  env.base_dir = config->base_directory;
  env.host_dir = config->host_directory;
  env.hostname = Hostname();
  env.keep_job_dir = config->ignore_cleanup;
  env.limits = JobLimitsFromConfig(*config);
  env.defer_cleanup = true;  // the slot acks first, then removes containers and folder
  env.labels["org.codabench.node"] = nodename;
  env.jobs_subfolder = NodeFolderName(nodename);
  if (config->max_image_store_gb > 0) {
    env.images = std::make_shared<ImageBudget>(
        engine, GbToBytes(config->max_image_store_gb),
        config->base_directory / "image-use.json");
    if (metrics) {
      env.images->set_on_measured(
          [m = metrics.get()](long long bytes) { m->ImageStoreBytes(static_cast<double>(bytes)); });
    }
  }
  // A killed run of this node left its job folders (inputs, outputs, maybe
  // gigabytes); no job of ours runs yet, so they go. Kept when the admin
  // keeps job folders (CODALAB_IGNORE_CLEANUP_STEP).
  if (sweep && !env.keep_job_dir) {
    if (int left = RemoveLeftoverJobFolders(env); left > 0) {
      spdlog::warn("removed {} job folder(s) an earlier run of {} left in {}", left, nodename,
                   JobsFolder(env).string());
    }
  }
  // Pulls and downloads go to the log at info: an admin watching a 20 GB pull
  // sees it move every 5 s, and a transfer done within 2 s says nothing.
  env.progress.write = [](const std::string& line) {
    const LogFields& job = CurrentLogFields();
    if (job.submission < 0) {
      spdlog::info("{}", line);
    } else {
      spdlog::info("submission {} ({}): {}", job.submission, job.stage, line);
    }
  };
  WorkerConfig cfg = *config;
  env.rewrite_url = [cfg](const std::string& url) { return RewriteUrl(cfg, url); };
  // GPU use per slot (gauges) and per job (log, metadata, histograms).
  GpuFigures gpu_figures = StartGpuFigures(*slots, metrics.get());
  // One runner per slot: the slot's GPUs, CPUs and labels are in its
  // environment, so a job only ever sees its own slot's devices.
  std::vector<std::unique_ptr<JobRunner>> runners;
  for (const WorkerSlot& slot : *slots) {
    JobEnvironment slot_env = env;
    slot_env.container = slot.options;
    for (const auto& [k, v] : slot.labels) slot_env.labels[k] = v;
    slot_env.gpu_usage = gpu_figures.meters.at(runners.size());
    if (config->shared_network_namespaces && !slot.options.network_disabled) {
      // Not the job containers' node label: what lists a node's containers
      // (an admin's `docker ps --filter`, a revoke) sees only jobs.
      slot_env.network_holders = std::make_shared<NetworkHolders>(
          engine, std::map<std::string, std::string>{{kLabelHolderNode, nodename}},
          ContainerSecurityOptions(slot.options));
    }
    runners.push_back(std::make_unique<JobRunner>(slot_env, storage, cache, engine));
  }

  SiteReporterOptions reporter_options;
  reporter_options.socket.ca_bundle = config->site_ca_bundle;
  if (metrics) {
    reporter_options.socket.on_failure = [m = metrics.get()] { m->SiteError("websocket"); };
  }
  ReporterCloser closer;  // outlives the worker: destroyed after it, below
  JobFn run_job = [&](int slot, const RunArgs& args, CancelToken& cancel) {
    // A revoked (or shut down) job reports nothing more: its site calls and
    // transfers stop at once instead of retrying for minutes on its slot.
    // A job stopped by a time limit still reports Failed, so it keeps trying.
    AbandonScope abandon([&cancel] { return cancel.cancelled() && !cancel.report(); });
    auto reporter = std::make_unique<SiteReporter>(args.submissions_api_url, args.id,
                                                   args.user_pk, args.secret, args.is_scoring,
                                                   http, reporter_options);
    TimedReporter timed(*reporter, metrics.get(), board, slot);
    const std::string stage = args.is_scoring ? "scoring" : "prediction";
    if (metrics) metrics->JobStarted(stage);
    // Run never throws: a job's exception is already its Failed result.
    JobResult result = runners.at(static_cast<std::size_t>(slot))->Run(args, timed, cancel);
    if (metrics) {
      const JobTimings& t = result.timings;
      const std::string outcome = OutcomeName(result.outcome);
      metrics->JobFinished(stage, outcome,
                           {t.fetch_s, t.unzip_s, t.pull_s, t.container_start_s, t.programs_s,
                            t.upload_s, t.total_s});
      RecordJobGpuUsage(metrics.get(), stage, result.gpu);
      metrics->JobUsed(stage, outcome, UsageOf(result));
    }
    if (auto last = timed.last_status()) {
      spdlog::debug("submission {} job returned {:.3f} ms after its last status update", args.id,
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                              *last)
                        .count());
    }
    // The final report is out: return to the slot, which acks at once; the
    // live sockets close meanwhile.
    closer.Add(std::move(reporter));
    return result;
  };
  BadJobFn bad_job = [&](const nlohmann::json& raw, const std::string& reason) {
    // Enough of run_args to reach the site: tell it, so the submission does
    // not stay "Submitted" forever.
    if (!raw.is_object() || !raw.contains("id") || !raw.contains("secret") ||
        !raw.contains("submissions_api_url") || !raw["submissions_api_url"].is_string() ||
        !raw["secret"].is_string() || !raw["id"].is_number_integer()) {
      return;
    }
    // Neither may throw on a mistyped value: this is the report of one.
    const auto user_pk = raw.find("user_pk");
    const auto is_scoring = raw.find("is_scoring");
    SiteReporter reporter(
        raw["submissions_api_url"].get<std::string>(), raw["id"].get<long long>(),
        user_pk != raw.end() && user_pk->is_number_integer() ? user_pk->get<long long>() : 0LL,
        raw["secret"].get<std::string>(),
        is_scoring != raw.end() && is_scoring->is_boolean() && is_scoring->get<bool>(), http,
        reporter_options);
    Status st = reporter.UpdateStatus(JobStatus::kFailed, reason);
    if (!st.ok()) {
      spdlog::warn("could not report the unreadable job: {}", st.message());
      if (metrics && !AbandonScope::Abandoned()) metrics->SiteError("bad_job");
    }
  };

  ConsumerAcker acker;
  WorkerOptions wopts;
  wopts.nodename = nodename;
  wopts.slots = slot_count;
  wopts.status = &board;
  if (metrics) {
    wopts.on_connection_state = [m = metrics.get()](bool connected) { m->BrokerState(connected); };
  }
  Worker worker(wopts, acker, run_job, bad_job);

  ConsumerOptions copts;
  copts.nodename = nodename;
  copts.prefetch = slot_count;
  copts.connect.tls_verify = options.tls_verify;
  copts.connect.ca_file = config->broker_ssl_ca_certs;
  QueueConsumer consumer(*address, copts, worker);
  acker.Attach(&consumer);

  // `codabench-worker status` finds this worker here, metrics or not.
  std::unique_ptr<StatusSocket> status_socket;
  if (auto opened = StatusSocket::Open(StatusSocketPath(config->base_directory, nodename),
                                       status_handler);
      opened.ok()) {
    status_socket = std::move(opened).value();
    spdlog::info("status on {}", status_socket->path().string());
  } else {
    spdlog::warn("no status socket: {} (`codabench-worker status --address` still works with "
                 "METRICS_ADDRESS)",
                 opened.status().message());
  }

  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGQUIT, OnQuitSignal);
  worker.Start();
  std::atomic<bool> stop_broker{false};
  std::thread broker([&] { consumer.Run(stop_broker); });

  using Clock = std::chrono::steady_clock;
  bool draining = false, cold = false;
  std::optional<Clock::time_point> drain_deadline;
  int last_busy = -1;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    consumer.SetActiveCount(worker.active(), worker.processed());
    if (g_quit || g_stop_signals >= 2) {
      cold = true;
      break;
    }
    if (g_stop_signals == 0) continue;
    if (!draining) {
      // Warm shutdown: no new deliveries (other workers get the queue at
      // once), prefetched jobs go back, running jobs finish and are acked.
      // The pidbox stays: `inspect ping` and revokes still work.
      draining = true;
      if (metrics) metrics->ShuttingDown();
      consumer.StopConsuming();
      worker.BeginDrain();
      if (config->shutdown_timeout_s) {
        drain_deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(
                                            *config->shutdown_timeout_s * 1000.0));
      }
    }
    const int busy = worker.busy();
    if (busy == 0) break;
    if (drain_deadline && Clock::now() >= *drain_deadline) {
      spdlog::warn("warm shutdown: WORKER_SHUTDOWN_TIMEOUT ({} s) has passed",
                   *config->shutdown_timeout_s);
      cold = true;
      break;
    }
    if (busy != last_busy) {
      const int running = worker.active();
      const int reports = busy - running;
      spdlog::warn("warm shutdown: waiting for {} running job{}{} (send SIGTERM again to stop "
                   "them){}",
                   running, running == 1 ? "" : "s",
                   reports > 0 ? fmt::format(" and {} report{} to the site", reports,
                                             reports == 1 ? "" : "s")
                               : "",
                   drain_deadline ? fmt::format("; at most {} s", *config->shutdown_timeout_s)
                                  : "");
      last_busy = busy;
    }
  }
  if (cold) {
    spdlog::warn("cold shutdown: running jobs are stopped and left unacked for another worker");
  } else {
    spdlog::info("warm shutdown: every job has ended and been acked");
  }
  worker.Shutdown();
  consumer.StopConsuming();
  stop_broker = true;  // the consumer sends the last acks, then closes
  broker.join();
  if (metrics_server) metrics_server->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace cw
