// Which broker deliveries belong to which job, and when each is acked: the
// jobs queued here or running (by Celery task id), the ids of the last tasks
// finished and revoked (so a redelivery or a late message is recognised), the
// drain, and Celery's time limits. It decides; DeliveryAcker carries out.
//
// A message handed out twice (after a broker reconnect) runs and reports
// once: a copy of a queued or running task is attached to its job and acked
// with it; a copy of a finished one is acked at once.
//
// Threads: every method may be called from any thread (the broker thread
// admits and revokes, the slot threads take and finish jobs, the main thread
// drains and stops, the watchdog enforces limits). mu_ guards every member
// below it; the acker is called with mu_ held, so it must not call back (nor
// block: the QueueConsumer's queues the ack and wakes its thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/recent_ids.h"
#include "common/thread_annotations.h"
#include "job/cancel.h"
#include "job/job_runner.h"
#include "job/run_args.h"

namespace cw {

// Where acks go: the QueueConsumer in production, a recorder in tests.
class DeliveryAcker {
 public:
  virtual ~DeliveryAcker() = default;
  virtual void Ack(std::uint64_t epoch, std::uint64_t delivery_tag) = 0;
  virtual void Reject(std::uint64_t epoch, std::uint64_t delivery_tag, bool requeue) = 0;
};

// One task, from its first delivery to its ack. Fields up to `deliveries` are
// set before it is enqueued and never change; `deliveries`, `running`,
// `slot`, `started` and `started_unix` belong to the ledger (under its lock).
struct LedgerJob {
  std::string task_id;
  RunArgs args;
  nlohmann::json raw_args;
  std::optional<double> soft_limit_s, hard_limit_s;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> deliveries;  // epoch, tag
  CancelToken cancel;                                               // thread-safe on its own
  bool running = false;
  int slot = -1;
  std::chrono::steady_clock::time_point started;
  double started_unix = 0;
};

// A running job as `inspect active` shows it (a copy, taken under the lock).
struct RunningJobView {
  std::string task_id;
  nlohmann::json raw_args;
  bool is_scoring = false;
  bool redelivered = false;
  int slot = -1;
  double started_unix = 0;
};

class DeliveryLedger {
 public:
  using Clock = std::chrono::steady_clock;

  // `remember` task ids are kept of those finished, and of those revoked.
  DeliveryLedger(DeliveryAcker& acker, std::size_t remember);

  enum class Admission {
    kNew,        // not seen: the caller parses it and calls Enqueue
    kKnown,      // revoked, finished, or a copy of a job here: acked or attached
    kHandedBack  // draining or stopping: rejected with requeue for another worker
  };
  // The first look at a delivery of task `task_id` (logs what it decided).
  Admission Admit(std::uint64_t epoch, std::uint64_t tag, const std::string& task_id);
  // Queues a job admitted as kNew (its one delivery in `deliveries`). False
  // when a drain or stop began since: its delivery is handed back.
  bool Enqueue(std::shared_ptr<LedgerJob> job);

  // Blocks until a job is queued (returns it, marked running in `slot`) or
  // Stop is called (returns null).
  std::shared_ptr<LedgerJob> Take(int slot);
  // The job taken by Take ended with `outcome`: its deliveries are acked and
  // its id remembered, except for a job stopped by a cold shutdown (left
  // unacked, for another worker).
  void Finish(const LedgerJob& job, JobResult::Outcome outcome);

  // The warm shutdown: queued jobs are handed back (rejected with requeue)
  // and later deliveries too. Returns the number running.
  int BeginDrain();
  // The cold shutdown: Take returns null from now on, running jobs are
  // cancelled ("the worker is shutting down").
  void Stop();

  // Celery's revoke: remembers the ids; a queued job is dropped and acked, a
  // running one cancelled when `terminate`.
  void Revoke(const std::vector<std::string>& ids, bool terminate);
  // The revoked ids remembered, sorted.
  std::vector<std::string> RevokedIds() const;
  // Cancels running jobs past their Celery time limit at `now`.
  void EnforceTimeLimits(Clock::time_point now);

  std::vector<RunningJobView> Running() const;
  int active() const;
  int processed() const;
  int queued() const;

 private:
  DeliveryAcker& acker_;

  mutable Mutex mu_;
  CondVar cv_;  // a job queued, or Stop
  bool stopping_ GUARDED_BY(mu_) = false;
  bool draining_ GUARDED_BY(mu_) = false;
  std::deque<std::shared_ptr<LedgerJob>> queue_ GUARDED_BY(mu_);
  // Queued or running, by task id.
  std::map<std::string, std::shared_ptr<LedgerJob>> jobs_ GUARDED_BY(mu_);
  RecentIds finished_ GUARDED_BY(mu_);
  RecentIds revoked_ GUARDED_BY(mu_);
  int active_ GUARDED_BY(mu_) = 0;
  int processed_ GUARDED_BY(mu_) = 0;
};

}  // namespace cw
