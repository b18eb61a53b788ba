// What the worker's tests share: an acker that records, task deliveries as
// the site sends them, a job function whose jobs wait to be released.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "broker/consumer.h"
#include "worker/delivery_ledger.h"
#include "worker/slot_loop.h"

namespace cw::worker_testing {

class RecordingAcker : public DeliveryAcker {
 public:
  void Ack(std::uint64_t epoch, std::uint64_t tag) override {
    std::lock_guard<std::mutex> lock(mu);
    acks.emplace_back(epoch, tag);
  }
  void Reject(std::uint64_t epoch, std::uint64_t tag, bool requeue) override {
    std::lock_guard<std::mutex> lock(mu);
    rejects.push_back({epoch, tag, requeue});
  }
  size_t ack_count() {
    std::lock_guard<std::mutex> lock(mu);
    return acks.size();
  }
  struct RejectCall {
    std::uint64_t epoch, tag;
    bool requeue;
  };
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> acks;
  std::vector<RejectCall> rejects;
};

inline nlohmann::json RunArgsJson(long long id) {
  return {{"id", id},
          {"user_pk", 1},
          {"submissions_api_url", "http://site/api"},
          {"secret", "s"},
          {"docker_image", "img"},
          {"execution_time_limit", 60},
          {"is_scoring", false},
          {"prediction_result", "http://store/p?sig=1"}};
}

inline Delivery TaskDelivery(std::uint64_t tag, const std::string& task_id,
                             const nlohmann::json& args,
                             const std::string& name = "compute_worker_run") {
  Delivery d;
  d.delivery_tag = tag;
  d.props.content_type = "application/json";
  d.props.content_encoding = "utf-8";
  d.props.headers = {{"task", name}, {"id", task_id}, {"timelimit", {nullptr, nullptr}}};
  d.body = nlohmann::json::array(
               {nlohmann::json::array({args}), nlohmann::json::object(), {{"callbacks", nullptr}}})
               .dump();
  return d;
}

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// A job function whose jobs run until released (or cancelled).
struct GatedJobs {
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  std::vector<long long> ran;
  std::map<long long, int> slot_of;  // submission id -> slot it ran in
  std::mutex mu;
  JobFn fn() {
    return [this](int slot, const RunArgs& args, CancelToken& cancel) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(args.id);
        slot_of[args.id] = slot;
      }
      ++started;
      while (!release && !cancel.cancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      JobResult r;
      if (cancel.cancelled()) {
        r.outcome = cancel.report() ? JobResult::Outcome::kFailed : JobResult::Outcome::kCancelled;
        r.failure = Cancelled(cancel.reason());
      } else {
        r.outcome = JobResult::Outcome::kSucceeded;
      }
      return r;
    };
  }
};

// A job for the ledger, as Worker::OnDelivery builds it from a delivery.
inline std::shared_ptr<LedgerJob> MakeJob(const std::string& task_id, long long submission,
                                          std::uint64_t epoch, std::uint64_t tag) {
  auto job = std::make_shared<LedgerJob>();
  job->task_id = task_id;
  job->args.id = submission;
  job->raw_args = RunArgsJson(submission);
  job->deliveries.emplace_back(epoch, tag);
  return job;
}

}  // namespace cw::worker_testing
