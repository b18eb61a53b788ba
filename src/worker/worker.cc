#include "worker/worker.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "broker/celery.h"

namespace cw {

Worker::Worker(WorkerOptions options, DeliveryAcker& acker, JobFn run_job, BadJobFn bad_job)
    : options_(std::move(options)),
      acker_(acker),
      ledger_(acker, options_.remember_finished),
      reports_(std::move(bad_job), options_.max_pending_reports),
      slots_(options_.slots, ledger_, std::move(run_job), reports_, options_.status),
      control_(options_.nodename, options_.slots, ledger_),
      watchdog_("watchdog") {}

Worker::~Worker() { Shutdown(); }

void Worker::Start() {
  slots_.Start();
  watchdog_.Repeat(options_.watchdog_interval,
                   [this] { ledger_.EnforceTimeLimits(DeliveryLedger::Clock::now()); });
}

void Worker::Shutdown() {
  ledger_.Stop();
  slots_.Join();
  watchdog_.Shutdown(SerialExecutor::Leftovers::kDrop);
  reports_.Abandon();
}

int Worker::BeginDrain() {
  const int running = ledger_.BeginDrain();
  if (options_.status) options_.status->Draining();
  return running;
}

int Worker::busy() const {
  return ledger_.active() + ledger_.queued() + slots_.cleanups_pending() + reports_.pending();
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
  if (ledger_.Admit(epoch, delivery.delivery_tag, task->id) != DeliveryLedger::Admission::kNew) {
    return;
  }
  const nlohmann::json raw =
      task->args.is_array() && !task->args.empty() ? task->args[0] : nlohmann::json();
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
    reports_.Queue(raw, "The worker could not read this job: " + args.status().message());
    return;
  }
  auto job = std::make_shared<LedgerJob>();
  job->task_id = task->id;
  job->args = std::move(args).value();
  job->raw_args = raw;
  job->soft_limit_s = task->soft_time_limit;
  job->hard_limit_s = task->hard_time_limit;
  job->deliveries.emplace_back(epoch, delivery.delivery_tag);
  spdlog::info("received task {} (submission {}, {})", job->task_id, job->args.id,
               job->args.is_scoring ? "scoring" : "prediction");
  (void)ledger_.Enqueue(std::move(job));  // or handed back, when a drain began meanwhile
}

nlohmann::json Worker::OnControl(const ControlMessage& message) { return control_.Answer(message); }

void Worker::OnConnectionState(bool connected, const std::string& detail) {
  if (connected) {
    spdlog::info("broker connected: {}", detail);
  } else {
    spdlog::warn("broker connection lost: {}", detail);
  }
  if (options_.status) options_.status->BrokerState(connected);
  if (options_.on_connection_state) options_.on_connection_state(connected);
}

}  // namespace cw
