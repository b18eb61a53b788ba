// The queue worker's brain: turns broker deliveries into jobs for its slots,
// acks each message once its job is over, answers Celery's remote control
// (ping, revoke, active, ...), and makes sure a message handed out twice
// (after a broker reconnect) runs and reports once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/amqp_client.h"
#include "broker/celery.h"
#include "broker/consumer.h"
#include "job/cancel.h"
#include "job/job_runner.h"
#include "job/run_args.h"
#include "worker/status_board.h"

namespace cw {

// "succeeded", "failed", "cancelled": the words of the metrics and `status`.
inline const char* OutcomeName(JobResult::Outcome outcome) {
  switch (outcome) {
    case JobResult::Outcome::kSucceeded: return "succeeded";
    case JobResult::Outcome::kCancelled: return "cancelled";
    case JobResult::Outcome::kFailed: break;
  }
  return "failed";
}

// Where acks go: the QueueConsumer in production, a recorder in tests.
class DeliveryAcker {
 public:
  virtual ~DeliveryAcker() = default;
  virtual void Ack(std::uint64_t epoch, std::uint64_t delivery_tag) = 0;
  virtual void Reject(std::uint64_t epoch, std::uint64_t delivery_tag, bool requeue) = 0;
};

// Runs one job to its end in slot `slot` (0 .. slots-1; the slot decides the
// job's GPUs and CPUs). The real one reports to the site (serve.cc).
using JobFn = std::function<JobResult(int slot, const RunArgs&, CancelToken&)>;
// Tells the site that a message it sent could not be run (bad run_args, or
// the worker failed on it), when the message says enough to reach the site.
// Best effort. Called on the worker's own reporting thread, never on the
// broker thread: it makes HTTP calls with retries. Its retries should give up
// when AbandonScope::Abandoned() (a cold shutdown).
using BadJobFn = std::function<void(const nlohmann::json& run_args, const std::string& reason)>;

struct WorkerOptions {
  std::string nodename = "compute-worker@localhost";
  int slots = 1;
  std::size_t remember_finished = 1000;  // task ids kept to recognise redeliveries
  std::chrono::milliseconds watchdog_interval{500};
  // Bad-job reports waiting for the reporting thread; more are dropped (and
  // logged): a flood of bad messages must not grow memory without bound.
  std::size_t max_pending_reports = 100;
  // Told of every change of the broker connection (on the broker thread; must
  // not block): the metrics and /readyz follow it.
  std::function<void(bool connected)> on_connection_state;
  // Told what each slot runs, the broker and a drain, for `status` (may be
  // null; must outlive the Worker).
  StatusBoard* status = nullptr;
};

class Worker : public BrokerHandler {
 public:
  Worker(WorkerOptions options, DeliveryAcker& acker, JobFn run_job, BadJobFn bad_job = {});
  ~Worker() override;

  void Start();
  // The warm shutdown: no job starts any more. Jobs queued here but not
  // started are rejected with requeue (the broker gives them to another
  // worker at once), and so is any delivery still arriving; running jobs go on
  // to their end, report and are acked. Returns the number still running.
  int BeginDrain();
  // Running jobs plus bad-job reports not yet sent: the warm shutdown waits
  // for this to reach 0.
  int busy() const;
  // The cold shutdown: stops taking jobs and cancels the running ones without
  // acking them, so the broker hands their messages to another worker; a
  // bad-job report still retrying is abandoned. Returns when the slots and the
  // reporting thread have stopped.
  void Shutdown();

  void OnDelivery(std::uint64_t epoch, Delivery delivery) override;
  nlohmann::json OnControl(const ControlMessage& message) override;
  void OnConnectionState(bool connected, const std::string& detail) override;

  int active() const;
  int processed() const;
  int queued() const;

 private:
  struct Job {
    std::string task_id;
    RunArgs args;
    nlohmann::json raw_args;
    std::optional<double> soft_limit_s, hard_limit_s;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> deliveries;  // epoch, tag
    CancelToken cancel;
    bool running = false;
    int slot = -1;
    std::chrono::steady_clock::time_point started;
    double started_unix = 0;
  };

  struct BadJobReport {
    nlohmann::json raw_args;
    std::string reason;
  };

  void SlotLoop(int slot);
  // A finished job's cleanup (its containers and folder) goes to the
  // janitor thread, so the slot takes its next job at once; past a few
  // waiting, the slot does it itself, so cleanups never fall behind jobs.
  void Tidy(std::function<void()> cleanup);
  void JanitorLoop();
  // Runs the job; any exception is turned into a failed result and a report.
  JobResult RunJobSafely(int slot, Job& job);
  void WatchdogLoop();
  void ReportLoop();
  // Hands a report to the reporting thread; never blocks on the site.
  void QueueBadJob(nlohmann::json raw_args, std::string reason);
  void AckAll(const Job& job);
  void RememberFinished(const std::string& task_id);
  nlohmann::json Revoke(const nlohmann::json& arguments);
  nlohmann::json Active() const;

  WorkerOptions options_;
  DeliveryAcker& acker_;
  JobFn run_job_;
  BadJobFn bad_job_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool draining_ = false;
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // queued or running, by task id
  std::set<std::string> finished_;
  std::deque<std::string> finished_order_;
  std::set<std::string> revoked_;
  std::deque<std::string> revoked_order_;
  int active_ = 0;
  int processed_ = 0;
  std::vector<std::thread> slots_;
  std::thread watchdog_;

  // The janitor's queue, with its own lock: a slot never waits on a cleanup
  // it did not take on itself.
  mutable std::mutex janitor_mu_;
  std::condition_variable janitor_cv_;
  std::deque<std::function<void()>> cleanups_;
  int cleanups_running_ = 0;
  bool janitor_stop_ = false;
  std::thread janitor_;

  // The reporting thread's queue (bad-job reports), with its own lock so that
  // nothing on the broker thread ever waits on a report.
  mutable std::mutex reports_mu_;
  std::condition_variable reports_cv_;
  std::deque<BadJobReport> reports_;
  int reports_in_flight_ = 0;
  bool reports_stop_ = false;
  std::atomic<bool> reports_abandon_{false};
  std::thread reporter_;
};

}  // namespace cw
