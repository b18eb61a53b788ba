#include "worker/delivery_ledger.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace cw {

namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

DeliveryLedger::DeliveryLedger(DeliveryAcker& acker, std::size_t remember)
    : acker_(acker), finished_(remember), revoked_(remember) {}

DeliveryLedger::Admission DeliveryLedger::Admit(std::uint64_t epoch, std::uint64_t tag,
                                                const std::string& task_id) {
  MutexLock lock(mu_);
  if (revoked_.Contains(task_id)) {
    spdlog::info("task {} was revoked; dropping it", task_id);
    acker_.Ack(epoch, tag);
    return Admission::kKnown;
  }
  if (auto it = jobs_.find(task_id); it != jobs_.end()) {
    // The broker handed the message out again after a reconnect: the job is
    // already here. Keep one run; ack this copy too when it ends.
    spdlog::info("task {} redelivered while {}; it runs once", task_id,
                 it->second->running ? "running" : "queued");
    it->second->deliveries.emplace_back(epoch, tag);
    return Admission::kKnown;
  }
  if (finished_.Contains(task_id)) {
    spdlog::info("task {} redelivered after it finished; acking", task_id);
    acker_.Ack(epoch, tag);
    return Admission::kKnown;
  }
  if (draining_ || stopping_) {
    // Sent before the broker saw our basic.cancel: another worker takes it.
    spdlog::info("shutting down: handing task {} back to the queue", task_id);
    acker_.Reject(epoch, tag, /*requeue=*/true);
    return Admission::kHandedBack;
  }
  return Admission::kNew;
}

bool DeliveryLedger::Enqueue(std::shared_ptr<LedgerJob> job) {
  {
    MutexLock lock(mu_);
    if (draining_ || stopping_) {
      spdlog::info("shutting down: handing task {} back to the queue", job->task_id);
      for (auto [epoch, tag] : job->deliveries) acker_.Reject(epoch, tag, /*requeue=*/true);
      return false;
    }
    jobs_[job->task_id] = job;
    queue_.push_back(job);
  }
  cv_.NotifyOne();
  return true;
}

std::shared_ptr<LedgerJob> DeliveryLedger::Take(int slot) {
  MutexLock lock(mu_);
  while (!stopping_ && queue_.empty()) cv_.Wait(lock);
  if (stopping_) return nullptr;
  std::shared_ptr<LedgerJob> job = queue_.front();
  queue_.pop_front();
  job->running = true;
  job->slot = slot;
  job->started = Clock::now();
  job->started_unix = UnixNow();
  ++active_;
  return job;
}

void DeliveryLedger::Finish(const LedgerJob& job, JobResult::Outcome outcome) {
  MutexLock lock(mu_);
  --active_;
  ++processed_;
  jobs_.erase(job.task_id);
  // A job stopped by shutdown stays unacked: the broker gives it to another
  // worker. Every other end (done, failed, revoked) is final.
  if (stopping_ && outcome == JobResult::Outcome::kCancelled && !revoked_.Contains(job.task_id)) {
    return;
  }
  for (auto [epoch, tag] : job.deliveries) acker_.Ack(epoch, tag);
  finished_.Add(job.task_id);
}

int DeliveryLedger::BeginDrain() {
  MutexLock lock(mu_);
  draining_ = true;
  // Prefetched, not started: back to the queue, for another worker now.
  for (const auto& job : queue_) {
    for (auto [epoch, tag] : job->deliveries) acker_.Reject(epoch, tag, /*requeue=*/true);
    jobs_.erase(job->task_id);
    spdlog::info("task {} (submission {}) had not started: handed back to the queue", job->task_id,
                 job->args.id);
  }
  queue_.clear();
  return active_;
}

void DeliveryLedger::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    for (auto& [id, job] : jobs_) {
      if (job->running) job->cancel.Cancel("the worker is shutting down");
    }
  }
  cv_.NotifyAll();
}

void DeliveryLedger::Revoke(const std::vector<std::string>& ids, bool terminate) {
  MutexLock lock(mu_);
  for (const auto& id : ids) {
    revoked_.Add(id);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    auto job = it->second;
    if (!job->running) {
      // Queued here but not started: drop it now.
      if (auto q = std::find(queue_.begin(), queue_.end(), job); q != queue_.end()) queue_.erase(q);
      jobs_.erase(it);
      for (auto [epoch, tag] : job->deliveries) acker_.Ack(epoch, tag);
      finished_.Add(id);
      spdlog::info("task {} revoked before it started", id);
    } else if (terminate) {
      spdlog::info("task {} revoked: stopping submission {}'s containers", id, job->args.id);
      job->cancel.Cancel("revoked");
    }
  }
}

std::vector<std::string> DeliveryLedger::RevokedIds() const {
  std::vector<std::string> ids;
  {
    MutexLock lock(mu_);
    ids = revoked_.List();
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

void DeliveryLedger::EnforceTimeLimits(Clock::time_point now) {
  MutexLock lock(mu_);
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

std::vector<RunningJobView> DeliveryLedger::Running() const {
  MutexLock lock(mu_);
  std::vector<RunningJobView> out;
  for (const auto& [id, job] : jobs_) {
    if (!job->running) continue;
    out.push_back({id, job->raw_args, job->args.is_scoring, job->deliveries.size() > 1, job->slot,
                   job->started_unix});
  }
  return out;
}

int DeliveryLedger::active() const {
  MutexLock lock(mu_);
  return active_;
}

int DeliveryLedger::processed() const {
  MutexLock lock(mu_);
  return processed_;
}

int DeliveryLedger::queued() const {
  MutexLock lock(mu_);
  return static_cast<int>(queue_.size());
}

}  // namespace cw
