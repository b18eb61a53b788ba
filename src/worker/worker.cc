#include "worker/worker.h"

#include "common/log.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <new>

#include "common/abandon.h"

namespace cw {

namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Worker::Worker(WorkerOptions options, DeliveryAcker& acker, JobFn run_job, BadJobFn bad_job)
    : options_(std::move(options)), acker_(acker), run_job_(std::move(run_job)),
      bad_job_(std::move(bad_job)) {
  if (bad_job_) reporter_ = std::thread([this] { ReportLoop(); });
}

Worker::~Worker() { Shutdown(); }

void Worker::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  // Before the slots: they hand it their cleanups from their first job on.
  janitor_ = std::thread([this] { JanitorLoop(); });
  for (int i = 0; i < options_.slots; ++i) slots_.emplace_back([this, i] { SlotLoop(i); });
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

void Worker::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && slots_.empty()) return;
    stopping_ = true;
    for (auto& [id, job] : jobs_) {
      if (job->running) job->cancel.Cancel("the worker is shutting down");
    }
  }
  cv_.notify_all();
  for (auto& t : slots_) t.join();
  slots_.clear();
  if (watchdog_.joinable()) watchdog_.join();
  {
    // What the janitor holds is still done: containers and folders must not
    // outlive the worker.
    std::lock_guard<std::mutex> lock(janitor_mu_);
    janitor_stop_ = true;
  }
  janitor_cv_.notify_all();
  if (janitor_.joinable()) janitor_.join();
  {
    std::lock_guard<std::mutex> lock(reports_mu_);
    reports_stop_ = true;
    if (!reports_.empty() || reports_in_flight_ > 0) {
      spdlog::warn("shutting down: {} bad-job report(s) to the site abandoned",
                   reports_.size() + static_cast<std::size_t>(reports_in_flight_));
    }
    reports_.clear();
  }
  reports_abandon_ = true;  // a report retrying against a slow site stops now
  reports_cv_.notify_all();
  if (reporter_.joinable()) reporter_.join();
}

int Worker::BeginDrain() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
  if (options_.status) options_.status->Draining();
  // Prefetched, not started: back to the queue, for another worker now.
  for (const auto& job : queue_) {
    for (auto [epoch, tag] : job->deliveries) acker_.Reject(epoch, tag, /*requeue=*/true);
    jobs_.erase(job->task_id);
    spdlog::info("task {} (submission {}) had not started: handed back to the queue",
                 job->task_id, job->args.id);
  }
  queue_.clear();
  return active_;
}

int Worker::busy() const {
  int running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running = active_ + static_cast<int>(queue_.size());
  }
  {
    std::lock_guard<std::mutex> lock(janitor_mu_);
    running += static_cast<int>(cleanups_.size()) + cleanups_running_;
  }
  std::lock_guard<std::mutex> lock(reports_mu_);
  return running + static_cast<int>(reports_.size()) + reports_in_flight_;
}

void Worker::QueueBadJob(nlohmann::json raw_args, std::string reason) {
  if (!bad_job_) return;
  {
    std::lock_guard<std::mutex> lock(reports_mu_);
    if (reports_stop_) return;
    if (reports_.size() >= options_.max_pending_reports) {
      spdlog::warn("not telling the site about a bad job ({} reports already waiting): {}",
                   reports_.size(), reason);
      return;
    }
    reports_.push_back({std::move(raw_args), std::move(reason)});
  }
  reports_cv_.notify_one();
}

void Worker::ReportLoop() {
  // Its HTTP retries give up once the cold shutdown says so.
  AbandonScope abandon([this] { return reports_abandon_.load(); });
  std::unique_lock<std::mutex> lock(reports_mu_);
  while (true) {
    reports_cv_.wait(lock, [this] { return reports_stop_ || !reports_.empty(); });
    if (reports_stop_) return;
    BadJobReport report = std::move(reports_.front());
    reports_.pop_front();
    ++reports_in_flight_;
    lock.unlock();
    try {
      bad_job_(report.raw_args, report.reason);
    } catch (const std::exception& e) {
      spdlog::warn("could not report a bad job to the site: {}", e.what());
    } catch (...) {
      spdlog::warn("could not report a bad job to the site");
    }
    lock.lock();
    --reports_in_flight_;
  }
}

void Worker::OnDelivery(std::uint64_t epoch, Delivery delivery) {
  // Nothing from a message may throw past here (the broker thread): a parse
  // that fails in an unexpected way is a bad message like any other.
  Result<TaskMessage> task = Internal("not parsed");
  try {
    task = ParseTaskMessage(delivery.props, delivery.body);
  } catch (const std::exception& e) {
    task = InvalidInput(std::string("the message could not be read: ") + e.what());
  }
  if (!task.ok()) {
    spdlog::warn("rejecting a message that is not a Celery task: {}", task.status().message());
    acker_.Reject(epoch, delivery.delivery_tag, false);
    return;
  }
  if (task->task != "compute_worker_run") {
    spdlog::warn("rejecting task {} ({}): this worker only runs compute_worker_run", task->id,
                 task->task);
    acker_.Reject(epoch, delivery.delivery_tag, false);
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (revoked_.count(task->id)) {
    spdlog::info("task {} was revoked; dropping it", task->id);
    acker_.Ack(epoch, delivery.delivery_tag);
    return;
  }
  if (auto it = jobs_.find(task->id); it != jobs_.end()) {
    // The broker handed the message out again after a reconnect: the job is
    // already here. Keep one run; ack this copy too when it ends.
    spdlog::info("task {} redelivered while {}; it runs once", task->id,
                 it->second->running ? "running" : "queued");
    it->second->deliveries.emplace_back(epoch, delivery.delivery_tag);
    return;
  }
  if (finished_.count(task->id)) {
    spdlog::info("task {} redelivered after it finished; acking", task->id);
    acker_.Ack(epoch, delivery.delivery_tag);
    return;
  }
  if (draining_ || stopping_) {
    // Sent before the broker saw our basic.cancel: another worker takes it.
    spdlog::info("shutting down: handing task {} back to the queue", task->id);
    acker_.Reject(epoch, delivery.delivery_tag, /*requeue=*/true);
    return;
  }
  const nlohmann::json raw = task->args.is_array() && !task->args.empty() ? task->args[0]
                                                                           : nlohmann::json();
  Result<RunArgs> args = Internal("not parsed");
  try {
    // A kombu typed value left undecoded would only be misread below.
    args = task->undecodable.ok() ? ParseRunArgs(raw) : Result<RunArgs>(task->undecodable);
  } catch (const std::exception& e) {
    args = InvalidInput(e.what());
  }
  if (!args.ok()) {
    spdlog::warn("rejecting task {}: {}", task->id, args.status().message());
    // Reject first; the site hears about it from the reporting thread.
    acker_.Reject(epoch, delivery.delivery_tag, false);
    lock.unlock();
    QueueBadJob(raw, "The worker could not read this job: " + args.status().message());
    return;
  }
  auto job = std::make_shared<Job>();
  job->task_id = task->id;
  job->args = std::move(args).value();
  job->raw_args = raw;
  job->soft_limit_s = task->soft_time_limit;
  job->hard_limit_s = task->hard_time_limit;
  job->deliveries.emplace_back(epoch, delivery.delivery_tag);
  jobs_[job->task_id] = job;
  queue_.push_back(job);
  spdlog::info("received task {} (submission {}, {})", job->task_id, job->args.id,
               job->args.is_scoring ? "scoring" : "prediction");
  cv_.notify_all();  // the watchdog waits on it too: notify_one could wake only it
}

void Worker::SlotLoop(int slot) {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
      job->running = true;
      job->slot = slot;
      job->started = std::chrono::steady_clock::now();
      job->started_unix = UnixNow();
      ++active_;
    }
    if (options_.status) {
      options_.status->JobStarted(slot, job->task_id, job->args.id, job->args.is_scoring);
    }
    ScopedLogFields fields({job->args.id, job->args.is_scoring ? "scoring" : "prediction", slot,
                            job->task_id});
    spdlog::info("slot {}: submission {} {} job starts (task {})", slot, job->args.id,
                 job->args.is_scoring ? "scoring" : "prediction", job->task_id);
    JobResult result = RunJobSafely(slot, *job);
    const char* how = result.ok() ? "finished"
                      : result.outcome == JobResult::Outcome::kCancelled ? "was cancelled"
                                                                         : "failed";
    const JobTimings& t = result.timings;
    spdlog::info("slot {}: submission {} job {} in {:.2f}s (programs {:.2f}s, overhead {:.2f}s: "
                 "fetch {:.2f}s, unzip {:.2f}s, image {:.2f}s, start {:.2f}s, upload {:.2f}s){}{}",
                 slot, job->args.id, how, t.total_s, t.programs_s, t.total_s - t.programs_s,
                 t.fetch_s, t.unzip_s, t.pull_s, t.container_start_s, t.upload_s,
                 result.ok() ? "" : ": ", result.ok() ? "" : result.failure.message());
    if (options_.status) {
      options_.status->JobEnded(slot, OutcomeName(result.outcome),
                                result.ok() ? "" : result.failure.message(), job->args.secret);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --active_;
      ++processed_;
      jobs_.erase(job->task_id);
      // A job stopped by shutdown stays unacked: the broker gives it to
      // another worker. Every other end (done, failed, revoked) is final.
      if (!(stopping_ && result.outcome == JobResult::Outcome::kCancelled &&
            !revoked_.count(job->task_id))) {
        AckAll(*job);
        RememberFinished(job->task_id);
      }
    }
    // The final report and the ack are out: the job's containers and folder
    // go now, off the path between the site's status and the next job.
    if (result.cleanup) Tidy(std::move(result.cleanup));
  }
}

namespace {

// A cleanup that throws must not end the thread (nor the process).
void RunCleanup(const std::function<void()>& cleanup) {
  try {
    cleanup();
  } catch (const std::exception& e) {
    spdlog::error("a job's cleanup stopped: {}", e.what());
  } catch (...) {
    spdlog::error("a job's cleanup stopped on an unknown exception");
  }
}

}  // namespace

void Worker::Tidy(std::function<void()> cleanup) {
  {
    std::lock_guard<std::mutex> lock(janitor_mu_);
    const std::size_t most = static_cast<std::size_t>(std::max(2, options_.slots));
    if (!janitor_stop_ && cleanups_.size() < most) {
      cleanups_.push_back(std::move(cleanup));
      janitor_cv_.notify_one();
      return;
    }
  }
  RunCleanup(cleanup);
}

void Worker::JanitorLoop() {
  std::unique_lock<std::mutex> lock(janitor_mu_);
  while (true) {
    janitor_cv_.wait(lock, [this] { return janitor_stop_ || !cleanups_.empty(); });
    if (cleanups_.empty()) return;  // stopping, and nothing left to do
    std::function<void()> cleanup = std::move(cleanups_.front());
    cleanups_.pop_front();
    ++cleanups_running_;
    lock.unlock();
    RunCleanup(cleanup);
    lock.lock();
    --cleanups_running_;
  }
}

JobResult Worker::RunJobSafely(int slot, Job& job) {
  std::string what;
  try {
    return run_job_(slot, job.args, job.cancel);
  } catch (const std::bad_alloc&) {
    what = "out of memory";
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an unknown exception";
  }
  // The job is over: report it Failed (off this thread) and let the slot ack
  // its message, so a message that trips the worker never comes back.
  spdlog::error("slot {}: submission {} job (task {}) hit an internal error: {}", slot,
                job.args.id, job.task_id, what);
  JobResult result;
  result.outcome = JobResult::Outcome::kFailed;
  result.failure = Internal("internal error: " + what);
  if (!job.cancel.cancelled() || job.cancel.report()) {
    QueueBadJob(job.raw_args, "The worker hit an internal error while running this job: " + what);
  }
  return result;
}

void Worker::WatchdogLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.watchdog_interval);
    auto now = std::chrono::steady_clock::now();
    for (auto& [id, job] : jobs_) {
      if (!job->running) continue;
      double elapsed = std::chrono::duration<double>(now - job->started).count();
      if (job->hard_limit_s && elapsed > *job->hard_limit_s) {
        job->cancel.Cancel("Hard time limit exceeded (" +
                               std::to_string(static_cast<long long>(*job->hard_limit_s)) + " s)",
                           true);
      } else if (job->soft_limit_s && elapsed > *job->soft_limit_s) {
        job->cancel.Cancel("Execution time limit exceeded.", true);  // the Python worker's words
      }
    }
  }
}

void Worker::AckAll(const Job& job) {
  for (auto [epoch, tag] : job.deliveries) acker_.Ack(epoch, tag);
}

void Worker::RememberFinished(const std::string& task_id) {
  if (finished_.insert(task_id).second) finished_order_.push_back(task_id);
  while (finished_order_.size() > options_.remember_finished) {
    finished_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

nlohmann::json Worker::OnControl(const ControlMessage& message) {
  const std::string& m = message.method;
  if (m == "ping") return {{"ok", "pong"}};
  if (m == "revoke") return Revoke(message.arguments);
  if (m == "active") return Active();
  if (m == "registered") return nlohmann::json::array({"compute_worker_run"});
  if (m == "revoked") {
    std::lock_guard<std::mutex> lock(mu_);
    return nlohmann::json(std::vector<std::string>(revoked_.begin(), revoked_.end()));
  }
  if (m == "stats") {
    std::lock_guard<std::mutex> lock(mu_);
    return {{"pid", static_cast<long long>(getpid())},
            {"pool", {{"max-concurrency", options_.slots}, {"implementation", "codabench-worker"}}},
            {"total", {{"compute_worker_run", processed_}}},
            {"active", active_}};
  }
  if (m == "active_queues") {
    return nlohmann::json::array({{{"name", "compute-worker"},
                                   {"exchange", {{"name", "compute-worker"}, {"type", "direct"}}},
                                   {"routing_key", "compute-worker"},
                                   {"durable", true},
                                   {"queue_arguments", {{"x-max-priority", 10}}}}});
  }
  spdlog::debug("ignoring remote control command {}", m);
  return {{"error", "unknown command: " + m}};
}

nlohmann::json Worker::Revoke(const nlohmann::json& arguments) {
  std::vector<std::string> ids;
  const auto& task_id = arguments.contains("task_id") ? arguments["task_id"] : nlohmann::json();
  if (task_id.is_string()) ids.push_back(task_id.get<std::string>());
  if (task_id.is_array()) {
    for (const auto& t : task_id) {
      if (t.is_string()) ids.push_back(t.get<std::string>());
    }
  }
  const bool terminate = arguments.value("terminate", false);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : ids) {
    if (revoked_.insert(id).second) revoked_order_.push_back(id);
    while (revoked_order_.size() > options_.remember_finished) {
      revoked_.erase(revoked_order_.front());
      revoked_order_.pop_front();
    }
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    auto job = it->second;
    if (!job->running) {
      // Queued here but not started: drop it now.
      for (auto q = queue_.begin(); q != queue_.end(); ++q) {
        if (*q == job) {
          queue_.erase(q);
          break;
        }
      }
      jobs_.erase(it);
      AckAll(*job);
      RememberFinished(id);
      spdlog::info("task {} revoked before it started", id);
    } else if (terminate) {
      spdlog::info("task {} revoked: stopping submission {}'s containers", id, job->args.id);
      job->cancel.Cancel("revoked");
    }
  }
  std::string joined;
  for (const auto& id : ids) joined += (joined.empty() ? "" : ", ") + id;
  return {{"ok", "tasks " + joined + " flagged as revoked"}};
}

nlohmann::json Worker::Active() const {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, job] : jobs_) {
    if (!job->running) continue;
    nlohmann::json redacted = job->raw_args;
    // `inspect active` output ends up in people's terminals: no secrets.
    if (redacted.is_object()) {
      for (auto& [k, v] : redacted.items()) {
        if (k == "secret" || (v.is_string() && v.get<std::string>().find('?') != std::string::npos)) {
          v = "<redacted>";
        }
      }
    }
    out.push_back({{"id", id},
                   {"name", "compute_worker_run"},
                   {"args", nlohmann::json::array({redacted})},
                   {"kwargs", nlohmann::json::object()},
                   {"type", "compute_worker_run"},
                   {"hostname", options_.nodename},
                   {"time_start", job->started_unix},
                   {"acknowledged", false},
                   {"delivery_info",
                    {{"exchange", "compute-worker"},
                     {"routing_key", "compute-worker"},
                     {"priority", job->args.is_scoring ? 10 : 0},
                     {"redelivered", job->deliveries.size() > 1}}},
                   {"worker_pid", static_cast<long long>(getpid())},
                   {"worker_slot", job->slot}});
  }
  return out;
}

void Worker::OnConnectionState(bool connected, const std::string& detail) {
  if (connected) {
    spdlog::info("broker connected: {}", detail);
  } else {
    spdlog::warn("broker connection lost: {}", detail);
  }
  if (options_.status) options_.status->BrokerState(connected);
  if (options_.on_connection_state) options_.on_connection_state(connected);
}

int Worker::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

int Worker::processed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return processed_;
}

int Worker::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

}  // namespace cw
