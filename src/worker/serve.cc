#include "worker/serve.h"

#include <atomic>
#include <csignal>
#include <memory>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "broker/broker_url.h"
#include "broker/consumer.h"
#include "common/hostname.h"
#include "common/log.h"
#include "common/units.h"
#include "engine/docker_engine.h"
#include "engine/oci_runtime.h"
#include "gpu/gpu_info.h"
#include "gpu/worker_slots.h"
#include "job/job_runner.h"
#include "job/network_holders.h"
#include "metrics/http_server.h"
#include "metrics/worker_metrics.h"
#include "site/http_client.h"
#include "site/http_storage.h"
#include "storage/bundle_cache.h"
#include "worker/engine_checker.h"
#include "worker/gpu_figures.h"
#include "worker/metered.h"
#include "worker/shutdown.h"
#include "worker/site_job.h"
#include "worker/slot_environments.h"
#include "worker/startup_sweep.h"
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

// Plans the slots on the engine's host (`info`, its /info): its CPUs, and
// the GPUs this process can see (the worker container needs GPU access for
// that). Logs them, and what the engine cannot enforce (*unenforced, for
// each job's log).
// Returns the exit code on failure.
Result<std::vector<WorkerSlot>> PlanSlots(const WorkerConfig& config,
                                          const Result<EngineInfo>& info,
                                          std::string* unenforced) {
  int cpu_count = 0;
  if (info.ok()) {
    cpu_count = info->ncpu;
    *unenforced = UnenforcedLimits(*info);
    if (!unenforced->empty()) spdlog::warn("{}", *unenforced);
  } else {
    spdlog::warn("the engine did not describe its host ({}); slots are not pinned to CPUs",
                 info.status().message());
  }
  Result<std::vector<GpuInfo>> gpus = std::vector<GpuInfo>{};
  if (WantsGpus(config)) {
    GpuDiscoveryOptions discovery;
    discovery.log = [](const std::string& line) { spdlog::debug("GPU discovery: {}", line); };
    gpus = DiscoverGpus(discovery);
    if (gpus.ok()) spdlog::info("{}", DescribeGpus(*gpus));
  }
  std::vector<std::string> notes;
  auto slots = PlanWorkerSlots(config, gpus, cpu_count, &notes);
  for (const std::string& note : notes) spdlog::warn("{}", note);
  return slots;
}

// METRICS_ADDRESS: /metrics, /healthz, /readyz, and /status with
// METRICS_TOKEN (README "Metrics and health"). Off unless set; listens only
// where told. /status names the submissions the worker runs: over HTTP only
// to who holds the token, never to a program that reaches the address.
Status StartMetrics(const WorkerConfig& config, int slot_count,
                    const metrics::HttpHandler& status_handler,
                    std::unique_ptr<metrics::WorkerMetrics>& metrics,
                    std::unique_ptr<metrics::HttpServer>& server) {
  if (config.metrics_address.empty()) return Status::Ok();
  metrics = std::make_unique<metrics::WorkerMetrics>(slot_count);
  metrics->EngineCheck(true, "");  // it answered just before
  metrics->set_engine_max_age(std::chrono::seconds(35));
  auto handlers = metrics->Handlers();
  metrics::HttpServerOptions options;
  if (!config.metrics_token.empty()) {
    handlers["/status"] = status_handler;
    options.token = config.metrics_token;
    options.token_paths = {"/status"};
  }
  server = std::make_unique<metrics::HttpServer>(std::move(handlers), options);
  CW_RETURN_IF_ERROR(server->Start(config.metrics_address));
  spdlog::info("metrics and health on http://{}/metrics, /healthz, /readyz{}",
               config.metrics_address,
               config.metrics_token.empty() ? " (/status over HTTP needs METRICS_TOKEN)"
                                            : ", /status (with METRICS_TOKEN)");
  return Status::Ok();
}

// `codabench-worker status` finds this worker here, metrics or not.
std::unique_ptr<StatusSocket> OpenStatusSocket(const WorkerConfig& config,
                                               const std::string& nodename,
                                               const metrics::HttpHandler& handler) {
  auto opened = StatusSocket::Open(StatusSocketPath(config.base_directory, nodename), handler);
  if (!opened.ok()) {
    spdlog::warn("no status socket: {} (`codabench-worker status --address` still works with "
                 "METRICS_ADDRESS)",
                 opened.status().message());
    return nullptr;
  }
  spdlog::info("status on {}", (*opened)->path().string());
  return std::move(opened).value();
}

// The settings, the broker's address and the node name; logs why not (the
// exit code is then 2: the admin's to fix).
struct Settings {
  WorkerConfig config;
  BrokerAddress address;
  std::string nodename;
};
std::optional<Settings> LoadSettings(const ServeOptions& options) {
  auto config = LoadConfig(options.env_file, options.overrides);
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    return std::nullopt;
  }
  // SERIALIZED=true: JSON lines, as the Python worker's loguru writes them.
  ConfigureLogging(config->serialized_logs, config->log_level);
  if (config->broker_url.empty()) {
    spdlog::error("BROKER_URL is not set: give the Codabench queue's broker URL "
                  "(pyamqp://user:password@host:port/vhost) in the environment or .env");
    return std::nullopt;
  }
  auto address = ParseBrokerUrl(config->broker_url, config->broker_use_ssl);
  if (!address.ok()) {
    spdlog::error("{}", address.status().message());
    return std::nullopt;
  }
  std::string nodename = options.nodename.empty() ? DefaultNodeName() : options.nodename;
  return Settings{*std::move(config), *std::move(address), std::move(nodename)};
}

// Serves the queue until a shutdown has run its course: the Worker on its
// slots, the consumer on the broker thread, the drain on this one.
int ServeQueue(const Settings& s, bool tls_verify, int slot_count, StatusBoard& board,
               metrics::WorkerMetrics* metrics, SiteJobs& site_jobs,
               const metrics::HttpHandler& status_handler) {
  const WorkerConfig& config = s.config;
  const std::string& nodename = s.nodename;
  ConsumerAcker acker;
  WorkerOptions wopts;
  wopts.nodename = nodename;
  wopts.slots = slot_count;
  wopts.status = &board;
  if (metrics) {
    wopts.on_connection_state = [m = metrics](bool connected) { m->BrokerState(connected); };
  }
  Worker worker(
      wopts, acker,
      [&site_jobs](int slot, const RunArgs& args, CancelToken& cancel) {
        return site_jobs.Run(slot, args, cancel);
      },
      [&site_jobs](const nlohmann::json& raw, const std::string& reason) {
        site_jobs.ReportBadJob(raw, reason);
      });
  ConsumerOptions copts;
  copts.nodename = nodename;
  copts.prefetch = slot_count;
  copts.connect.tls_verify = tls_verify;
  copts.connect.ca_file = config.broker_ssl_ca_certs;
  QueueConsumer consumer(s.address, copts, worker);
  acker.Attach(&consumer);
  std::unique_ptr<StatusSocket> status_socket = OpenStatusSocket(config, nodename, status_handler);

  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGQUIT, OnQuitSignal);
  worker.Start();
  std::atomic<bool> stop_broker{false};
  std::thread broker([&] { consumer.Run(stop_broker); });
  DrainHooks hooks;
  hooks.tick = [&] { consumer.SetActiveCount(worker.active(), worker.processed()); };
  hooks.begin_drain = [&] {
    if (metrics) metrics->ShuttingDown();
    consumer.StopConsuming();
    worker.BeginDrain();
  };
  hooks.busy = [&] { return worker.busy(); };
  hooks.running = [&] { return worker.active(); };
  if (WaitForShutdown(g_stop_signals, g_quit, config.shutdown_timeout_s, hooks) ==
      ShutdownKind::kCold) {
    spdlog::warn("cold shutdown: running jobs are stopped and left unacked for another worker");
  } else {
    spdlog::info("warm shutdown: every job has ended and been acked");
  }
  worker.Shutdown();
  consumer.StopConsuming();
  stop_broker = true;  // the consumer sends the last acks, then closes
  broker.join();
  return 0;
}

// CheckGpuRequestsKept for the first slot with GPUs: every slot's requests
// are of one kind, so one look tells. Its container is labelled as the
// holders are (not a job: an admin's `docker ps` by node lists jobs only),
// and a restart's sweep removes one left behind.
Status CheckSlotsGpuRequestsKept(const std::vector<WorkerSlot>& slots, const std::string& image,
                                 const std::string& nodename, ContainerEngine& engine) {
  for (const WorkerSlot& slot : slots) {
    if (slot.options.device_requests.empty()) continue;
    return CheckGpuRequestsKept(image, slot.options.device_requests,
                                {{kLabelHolderNode, nodename}}, engine);
  }
  return Status::Ok();
}

}  // namespace

int Serve(const ServeOptions& options) {
  std::optional<Settings> settings = LoadSettings(options);
  if (!settings) return 2;
  const WorkerConfig& config = settings->config;
  const BrokerAddress& address = settings->address;
  const std::string& nodename = settings->nodename;

  DockerEngine engine(config.container_socket);
  auto version = engine.Version();
  if (!version.ok()) {
    spdlog::error("{}", version.status().message());
    return 1;
  }
  const Result<EngineInfo> info = engine.Info();  // the host, its runtimes
  std::string unenforced_limits;
  auto slots = PlanSlots(config, info, &unenforced_limits);
  if (!slots.ok()) {
    spdlog::error("{}", slots.status().message());
    return slots.status().code() == Code::kInvalidInput ? 2 : 1;
  }
  const int slot_count = static_cast<int>(slots->size());
  spdlog::info("codabench-worker {} on {} (engine {}), broker {}, {} slot(s)", nodename,
               config.host_directory.string(), *version, address.Redacted(), slot_count);
  for (const WorkerSlot& slot : *slots) spdlog::info("{}", DescribeSlot(slot.plan));
  // CONTAINER_RUNTIME: refused here, not by every job's create.
  auto runtime = CheckContainerRuntime(info, config.container_runtime, WantsGpus(config));
  if (!runtime.ok()) {
    spdlog::error("{}", runtime.status().message());
    return 2;
  }
  spdlog::info("programs run under {}", *runtime);

  // What `codabench-worker status` shows; outlives everything that feeds it.
  std::vector<StatusBoard::SlotInfo> slot_infos;
  for (const WorkerSlot& slot : *slots) slot_infos.push_back(SlotInfoOf(slot));
  StatusBoard board(nodename, metrics::BuildVersion(), std::move(slot_infos));
  board.EngineState(true, "");  // it answered just above
  const metrics::HttpHandler status_handler = [&board] {
    return metrics::HttpResponse{200, "application/json", board.Json().dump() + "\n"};
  };
  std::unique_ptr<metrics::WorkerMetrics> metrics;
  std::unique_ptr<metrics::HttpServer> metrics_server;
  if (Status st = StartMetrics(config, slot_count, status_handler, metrics, metrics_server);
      !st.ok()) {
    spdlog::error("{}", st.message());
    return st.code() == Code::kInvalidInput ? 2 : 1;
  }
  EngineChecker engine_checker(
      config.container_socket,
      [&board, m = metrics.get()](bool ok, const std::string& reason) {
        board.EngineState(ok, reason);
        if (m) m->EngineCheck(ok, reason);
      },
      std::chrono::seconds(10));
  spdlog::log(config.base_directory_doubtful ? spdlog::level::warn : spdlog::level::info,
              "jobs are written to {}: {}", config.base_directory.string(),
              config.base_directory_reason);
  // What an earlier run of this node name left goes, unless a live worker
  // uses the same name (worker/startup_sweep.h).
  const bool sweep = NoOtherLiveNode(address, nodename, options.tls_verify,
                                     config.broker_ssl_ca_certs);
  if (sweep) RemoveOrphanContainers(engine, nodename);
  std::error_code ec;
  fs::create_directories(config.base_directory, ec);
  if (ec) {
    spdlog::error("cannot create {}: {}", config.base_directory.string(), ec.message());
    return 1;
  }

  HttpClientOptions http_options;
  http_options.ca_bundle = config.site_ca_bundle;
  HttpClient http(http_options);
  // Only http(s): a queue message must never make the worker read or write
  // files of the host it runs on.
  HttpStorage http_storage(http);
  std::optional<MeteredStorage> metered;
  if (metrics) metered.emplace(http_storage, *metrics);
  Storage& storage = metered ? static_cast<Storage&>(*metered) : http_storage;
  BundleCache cache(config.base_directory / "cache",
                    CacheBytesFromGb(config.max_cache_dir_size_gb));
  if (metrics) {
    metrics->WatchCacheBytes([&cache] { return static_cast<double>(cache.SizeBytes()); });
  }
  JobEnvironment env = QueueJobEnvironment(config, nodename, engine, metrics.get());
  env.unenforced_limits = unenforced_limits;
  if (info.ok()) env.usage_figures = StatsArePerContainer(*info);
  PrepareEngine(env, engine);
  // No job of ours runs yet: what a killed run of this node left goes
  // (through the worker's own image what its user may not remove).
  if (sweep) RemoveOrphanJobFolders(env, engine, nodename);
  if (Status kept = CheckSlotsGpuRequestsKept(*slots, env.sandbox_image, nodename, engine);
      !kept.ok()) {
    spdlog::error("{}", kept.message());
    return 2;
  }
  // GPU use per slot (gauges) and per job (log, metadata, histograms).
  GpuFigures gpu_figures = StartGpuFigures(*slots, metrics.get());
  // One runner per slot: the slot's GPUs, CPUs and labels are in its
  // environment, so a job only ever sees its own slot's devices.
  std::vector<std::unique_ptr<JobRunner>> runners;
  for (const JobEnvironment& slot_env :
       SlotEnvironments(env, *slots, gpu_figures, config.shared_network_namespaces, engine,
                        nodename)) {
    runners.push_back(std::make_unique<JobRunner>(slot_env, storage, cache, engine));
  }
  SiteReporterOptions reporter_options;
  reporter_options.socket.ca_bundle = config.site_ca_bundle;
  if (metrics) {
    reporter_options.socket.on_failure = [m = metrics.get()] { m->SiteError("websocket"); };
  }
  // Outlives the worker, which calls it from its threads.
  SiteJobs site_jobs(http, reporter_options, std::move(runners), board, metrics.get());

  const int code = ServeQueue(*settings, options.tls_verify, slot_count, board, metrics.get(),
                              site_jobs, status_handler);
  if (metrics_server) metrics_server->Stop();
  spdlog::info("stopped");
  return code;
}

}  // namespace cw
