#include "worker/worker.h"

#include <atomic>
#include <map>
#include <set>
#include <chrono>
#include <thread>

#include "common/abandon.h"
#include "worker/test_helpers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cw {
namespace {
using ::testing::HasSubstr;

using worker_testing::GatedJobs;
using worker_testing::RecordingAcker;
using worker_testing::RunArgsJson;
using worker_testing::TaskDelivery;
using worker_testing::WaitFor;

TEST(Worker, RunsAJobAndAcksItAfterwards) {
  RecordingAcker acker;
  GatedJobs jobs;
  Worker w({}, acker, jobs.fn());
  w.Start();
  w.OnDelivery(1, TaskDelivery(7, "t-1", RunArgsJson(42)));
  ASSERT_TRUE(WaitFor([&] { return jobs.started == 1; }));
  EXPECT_EQ(acker.ack_count(), 0u);  // acks late: not while the job runs
  jobs.release = true;
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  EXPECT_EQ(acker.acks[0], std::make_pair(std::uint64_t{1}, std::uint64_t{7}));
  EXPECT_EQ(w.processed(), 1);
}

// `status` reads the board: the slot's job while it runs (with its task id),
// then the finished job with its outcome, and the drain.
TEST(Worker, FeedsTheStatusBoard) {
  RecordingAcker acker;
  GatedJobs jobs;
  StatusBoard board("node@test", "1.0", {{}, {}});
  WorkerOptions options;
  options.slots = 2;
  options.status = &board;
  Worker w(options, acker, jobs.fn());
  w.Start();
  w.OnConnectionState(true, "test");
  w.OnDelivery(1, TaskDelivery(7, "t-1", RunArgsJson(42)));
  ASSERT_TRUE(WaitFor([&] { return jobs.started == 1; }));
  nlohmann::json now = board.Json();
  EXPECT_TRUE(now["broker"]["connected"].get<bool>());
  int slot = jobs.slot_of[42];
  const nlohmann::json& job = now["slots"][slot]["job"];
  ASSERT_TRUE(job.is_object()) << now.dump();
  EXPECT_EQ(job["task_id"], "t-1");
  EXPECT_EQ(job["submission"], 42);
  EXPECT_EQ(job["stage"], "prediction");
  EXPECT_TRUE(now["slots"][1 - slot]["job"].is_null());
  jobs.release = true;
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return board.Json()["last_jobs"].size() == 1; }));
  nlohmann::json after = board.Json();
  EXPECT_EQ(after["last_jobs"][0]["submission"], 42);
  EXPECT_EQ(after["last_jobs"][0]["outcome"], "succeeded");
  EXPECT_TRUE(after["slots"][slot]["job"].is_null());
  EXPECT_FALSE(after["draining"].get<bool>());
  w.BeginDrain();
  EXPECT_TRUE(board.Json()["draining"].get<bool>());
}

TEST(Worker, BadMessagesAreRejectedWithoutRequeueAndTheNextIsServed) {
  RecordingAcker acker;
  GatedJobs jobs;
  jobs.release = true;
  std::mutex reasons_mu;
  std::vector<std::string> bad_reasons;
  Worker w({}, acker, jobs.fn(), [&](const nlohmann::json&, const std::string& reason) {
    std::lock_guard<std::mutex> lock(reasons_mu);
    bad_reasons.push_back(reason);
  });
  w.Start();
  Delivery garbage;
  garbage.delivery_tag = 1;
  garbage.props.content_type = "application/json";
  garbage.body = "{not json";
  w.OnDelivery(1, garbage);
  w.OnDelivery(1, TaskDelivery(2, "t-2", RunArgsJson(1), "some.other_task"));
  nlohmann::json no_image = RunArgsJson(5);
  no_image.erase("docker_image");
  w.OnDelivery(1, TaskDelivery(3, "t-3", no_image));
  Delivery pickle = TaskDelivery(4, "t-4", RunArgsJson(1));
  pickle.props.content_type = "application/x-python-serialize";
  w.OnDelivery(1, pickle);
  w.OnDelivery(1, TaskDelivery(5, "t-5", RunArgsJson(9)));
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  ASSERT_EQ(acker.rejects.size(), 4u);
  for (const auto& r : acker.rejects) EXPECT_FALSE(r.requeue);
  EXPECT_EQ(acker.acks[0].second, 5u);
  // The one with enough run_args to reach the site, reported off this thread.
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(reasons_mu);
    return !bad_reasons.empty();
  }));
  std::lock_guard<std::mutex> lock(reasons_mu);
  ASSERT_EQ(bad_reasons.size(), 1u);
  EXPECT_THAT(bad_reasons[0], HasSubstr("docker_image"));
}

// Codabench's site on Celery 5.6 sends the secret as kombu's typed uuid.
nlohmann::json TypedSecret(const std::string& hex) {
  return {{"__type__", "uuid"}, {"__value__", {{"hex", hex}}}};
}

TEST(Worker, AKombuTypedSecretReachesTheJobAsItsDashedText) {
  RecordingAcker acker;
  std::mutex mu;
  std::vector<std::string> secrets;
  Worker w({}, acker, [&](int, const RunArgs& args, CancelToken&) {
    std::lock_guard<std::mutex> lock(mu);
    secrets.push_back(args.secret);
    JobResult r;
    r.outcome = JobResult::Outcome::kSucceeded;
    return r;
  });
  w.Start();
  nlohmann::json args = RunArgsJson(7);
  args["secret"] = TypedSecret("3f2b8c1e5a4d4e6f9a7b0c1d2e3f4a5b");
  w.OnDelivery(1, TaskDelivery(1, "t-1", args));
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0], "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b");
  EXPECT_TRUE(acker.rejects.empty());
}

TEST(Worker, AnUndecodableTypedValueIsABadJobReportedWithTheDecodedSecret) {
  RecordingAcker acker;
  GatedJobs jobs;
  jobs.release = true;
  std::mutex mu;
  std::vector<std::pair<nlohmann::json, std::string>> reports;
  Worker w({}, acker, jobs.fn(), [&](const nlohmann::json& raw, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    reports.emplace_back(raw, reason);
  });
  w.Start();
  nlohmann::json args = RunArgsJson(8);
  args["secret"] = TypedSecret("3f2b8c1e5a4d4e6f9a7b0c1d2e3f4a5b");
  args["execution_time_limit"] = {{"__type__", "timedelta"}, {"__value__", 600}};
  w.OnDelivery(1, TaskDelivery(1, "t-1", args));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !reports.empty();
  }));
  ASSERT_EQ(acker.rejects.size(), 1u);
  EXPECT_FALSE(acker.rejects[0].requeue);
  EXPECT_EQ(jobs.started, 0);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(reports[0].first["secret"], "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b");
  EXPECT_THAT(reports[0].second, HasSubstr("'execution_time_limit'"));
  EXPECT_THAT(reports[0].second, HasSubstr("('timedelta')"));
}

// Records bad-job reports; each can be held until released, as a slow site would.
struct SlowSite {
  std::mutex mu;
  std::vector<std::pair<long long, std::string>> reports;  // submission id, reason
  std::set<std::thread::id> threads;
  std::atomic<bool> hold{false};
  std::atomic<int> entered{0};
  bool honour_abandon = true;
  BadJobFn fn() {
    return [this](const nlohmann::json& raw, const std::string& reason) {
      ++entered;
      while (hold) {
        if (honour_abandon && AbandonScope::Abandoned()) return;  // as the HTTP retries do
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      std::lock_guard<std::mutex> lock(mu);
      reports.emplace_back(raw.value("id", -1LL), reason);
      threads.insert(std::this_thread::get_id());
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return reports.size();
  }
};

TEST(Worker, BadJobReportsRunOffTheBrokerThreadAndNeverDelayPings) {
  RecordingAcker acker;
  GatedJobs jobs;
  jobs.release = true;
  SlowSite site;
  site.hold = true;  // the site does not answer
  Worker w({}, acker, jobs.fn(), site.fn());
  w.Start();
  nlohmann::json no_image = RunArgsJson(5);
  no_image.erase("docker_image");
  auto t0 = std::chrono::steady_clock::now();
  w.OnDelivery(1, TaskDelivery(3, "t-3", no_image));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::milliseconds(100));
  {
    std::lock_guard<std::mutex> lock(acker.mu);
    ASSERT_EQ(acker.rejects.size(), 1u);  // rejected first, without requeue
    EXPECT_EQ(acker.rejects[0].tag, 3u);
    EXPECT_FALSE(acker.rejects[0].requeue);
  }
  ASSERT_TRUE(WaitFor([&] { return site.entered == 1; }));  // the report is stuck at the site
  ControlMessage ping;
  ping.method = "ping";
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(w.OnControl(ping), nlohmann::json({{"ok", "pong"}}));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
  // Deliveries go on too while the report waits.
  w.OnDelivery(1, TaskDelivery(4, "t-4", RunArgsJson(6)));
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  EXPECT_EQ(w.busy(), 1);  // the report still waiting
  EXPECT_EQ(site.count(), 0u);
  site.hold = false;
  ASSERT_TRUE(WaitFor([&] { return site.count() == 1; }));
  std::lock_guard<std::mutex> lock(site.mu);
  EXPECT_EQ(site.reports[0].first, 5);
  EXPECT_THAT(site.reports[0].second, HasSubstr("docker_image"));
  EXPECT_FALSE(site.threads.count(std::this_thread::get_id()));
}

TEST(Worker, ShutdownAbandonsAReportStillWaitingOnTheSite) {
  RecordingAcker acker;
  GatedJobs jobs;
  SlowSite site;
  site.hold = true;
  auto w = std::make_unique<Worker>(WorkerOptions{}, acker, jobs.fn(), site.fn());
  w->Start();
  nlohmann::json no_image = RunArgsJson(5);
  no_image.erase("docker_image");
  w->OnDelivery(1, TaskDelivery(3, "t-3", no_image));
  ASSERT_TRUE(WaitFor([&] { return site.entered == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  w->Shutdown();  // joins the reporting thread, which gives up
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(site.count(), 0u);
}

TEST(Worker, DrainHandsBackQueuedJobsAndLetsTheRunningOneFinish) {
  RecordingAcker acker;
  GatedJobs jobs;
  Worker w({}, acker, jobs.fn());
  w.Start();
  w.OnDelivery(1, TaskDelivery(7, "t-1", RunArgsJson(42)));
  ASSERT_TRUE(WaitFor([&] { return jobs.started == 1; }));
  w.OnDelivery(1, TaskDelivery(8, "t-2", RunArgsJson(43)));  // prefetched, waiting
  EXPECT_EQ(w.BeginDrain(), 1);
  {
    std::lock_guard<std::mutex> lock(acker.mu);
    ASSERT_EQ(acker.rejects.size(), 1u);
    EXPECT_EQ(acker.rejects[0].tag, 8u);
    EXPECT_TRUE(acker.rejects[0].requeue);
  }
  EXPECT_EQ(w.queued(), 0);
  // A delivery sent before the broker saw basic.cancel goes back too.
  w.OnDelivery(1, TaskDelivery(9, "t-3", RunArgsJson(44)));
  {
    std::lock_guard<std::mutex> lock(acker.mu);
    ASSERT_EQ(acker.rejects.size(), 2u);
    EXPECT_EQ(acker.rejects[1].tag, 9u);
    EXPECT_TRUE(acker.rejects[1].requeue);
  }
  EXPECT_EQ(w.busy(), 1);
  ControlMessage ping;
  ping.method = "ping";
  EXPECT_EQ(w.OnControl(ping), nlohmann::json({{"ok", "pong"}}));
  jobs.release = true;
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  EXPECT_EQ(acker.acks[0].second, 7u);
  EXPECT_TRUE(WaitFor([&] { return w.busy() == 0; }));
  EXPECT_EQ(jobs.started, 1);  // neither handed-back job ran here
}

TEST(Worker, RevokeTerminatesTheRunningJobAndAcksIt) {
  RecordingAcker acker;
  GatedJobs jobs;
  Worker w({}, acker, jobs.fn());
  w.Start();
  w.OnDelivery(1, TaskDelivery(7, "t-1", RunArgsJson(42)));
  ASSERT_TRUE(WaitFor([&] { return jobs.started == 1; }));
  ControlMessage revoke;
  revoke.method = "revoke";
  revoke.arguments = {{"task_id", "t-1"}, {"terminate", true}, {"signal", "SIGTERM"}};
  nlohmann::json reply = w.OnControl(revoke);
  EXPECT_THAT(reply["ok"].get<std::string>(), HasSubstr("t-1"));
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
  // The next job is served.
  jobs.release = true;
  w.OnDelivery(1, TaskDelivery(8, "t-2", RunArgsJson(43)));
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 2; }));
}

TEST(Worker, ShutdownLeavesTheRunningJobUnacked) {
  RecordingAcker acker;
  GatedJobs jobs;
  auto w = std::make_unique<Worker>(WorkerOptions{}, acker, jobs.fn());
  w->Start();
  w->OnDelivery(1, TaskDelivery(7, "t-1", RunArgsJson(42)));
  ASSERT_TRUE(WaitFor([&] { return jobs.started == 1; }));
  w->Shutdown();
  EXPECT_EQ(acker.ack_count(), 0u);
}

TEST(Worker, SoftTimeLimitFailsTheJobAndAcksIt) {
  RecordingAcker acker;
  GatedJobs jobs;
  WorkerOptions opts;
  opts.watchdog_interval = std::chrono::milliseconds(20);
  Worker w(opts, acker, jobs.fn());
  w.Start();
  Delivery d = TaskDelivery(7, "t-1", RunArgsJson(42));
  d.props.headers["timelimit"] = {nullptr, 0.2};
  w.OnDelivery(1, d);
  ASSERT_TRUE(WaitFor([&] { return acker.ack_count() == 1; }));
}

}  // namespace
}  // namespace cw
