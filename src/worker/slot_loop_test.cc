#include "worker/slot_loop.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "worker/test_helpers.h"

namespace cw {
namespace {
using ::testing::HasSubstr;
using worker_testing::GatedJobs;
using worker_testing::MakeJob;
using worker_testing::RecordingAcker;
using worker_testing::WaitFor;

// The slots and the ledger they take jobs from, as the Worker puts them together.
struct Slots {
  Slots(int n, JobFn fn, BadJobFn bad = {})
      : ledger(acker, 100),
        reports(std::move(bad), 100),
        loop(n, ledger, std::move(fn), reports, nullptr) {
    loop.Start();
  }
  ~Slots() {
    ledger.Stop();
    loop.Join();
  }
  void Add(const std::string& task_id, long long submission, std::uint64_t tag) {
    ASSERT_TRUE(ledger.Enqueue(MakeJob(task_id, submission, 1, tag)));
  }
  RecordingAcker acker;
  DeliveryLedger ledger;
  BadJobReports reports;
  SlotLoop loop;
};

TEST(SlotLoop, ThreeSlotsRunThreeJobsAtOnceAndTheFourthWaits) {
  GatedJobs jobs;
  Slots s(3, jobs.fn());
  for (int i = 0; i < 4; ++i) s.Add("t-" + std::to_string(i), 100 + i, 10 + i);
  ASSERT_TRUE(WaitFor([&] { return jobs.started == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(jobs.started, 3);  // the fourth waits for a free slot
  EXPECT_EQ(s.ledger.active(), 3);
  EXPECT_EQ(s.ledger.queued(), 1);
  {
    std::lock_guard<std::mutex> lock(jobs.mu);
    std::set<int> slots;
    for (const auto& [id, slot] : jobs.slot_of) slots.insert(slot);
    EXPECT_EQ(slots, (std::set<int>{0, 1, 2}));  // one job per slot
    EXPECT_FALSE(jobs.slot_of.count(103));
  }
  jobs.release = true;
  ASSERT_TRUE(WaitFor([&] { return s.acker.ack_count() == 4; }));
  std::lock_guard<std::mutex> lock(jobs.mu);
  ASSERT_TRUE(jobs.slot_of.count(103));
  EXPECT_GE(jobs.slot_of[103], 0);
  EXPECT_LT(jobs.slot_of[103], 3);
}

// Container removal and folder cleanup come after the ack: they must not
// delay the next job's delivery (prefetch = slots).
TEST(SlotLoop, TheJobsCleanupRunsAfterItsAck) {
  std::atomic<int> acks_seen_by_cleanup{-1};
  RecordingAcker* acker = nullptr;
  JobFn fn = [&](int, const RunArgs&, CancelToken&) {
    JobResult r;
    r.outcome = JobResult::Outcome::kSucceeded;
    r.cleanup = [&] { acks_seen_by_cleanup = static_cast<int>(acker->ack_count()); };
    return r;
  };
  Slots s(1, fn);
  acker = &s.acker;
  s.Add("t-1", 42, 7);
  ASSERT_TRUE(WaitFor([&] { return acks_seen_by_cleanup >= 0; }));
  EXPECT_EQ(acks_seen_by_cleanup, 1);
}

// One slot: the next job must not wait for the last one's containers to go.
TEST(SlotLoop, TheNextJobStartsWhileTheLastOnesCleanupRuns) {
  std::atomic<int> started{0};
  std::atomic<bool> second_started_during_cleanup{false};
  std::atomic<int> cleanups_done{0};
  JobFn fn = [&](int, const RunArgs& args, CancelToken&) {
    ++started;
    JobResult r;
    r.outcome = JobResult::Outcome::kSucceeded;
    r.cleanup = [&, id = args.id] {
      if (id == 1) second_started_during_cleanup = WaitFor([&] { return started == 2; });
      ++cleanups_done;
    };
    return r;
  };
  {
    Slots s(1, fn);
    s.Add("t-1", 1, 1);
    s.Add("t-2", 2, 2);
    ASSERT_TRUE(WaitFor([&] { return s.acker.ack_count() == 2; }));
  }
  // Every cleanup has run by the time the slots are gone.
  EXPECT_EQ(cleanups_done, 2);
  EXPECT_TRUE(second_started_during_cleanup);
}

TEST(SlotLoop, PastAFewCleanupsWaitingTheSlotCleansUpItself) {
  std::atomic<bool> hold{true};
  std::mutex mu;
  std::set<std::thread::id> cleanup_threads;
  std::set<std::thread::id> slot_threads;
  JobFn fn = [&](int, const RunArgs&, CancelToken&) {
    {
      std::lock_guard<std::mutex> lock(mu);
      slot_threads.insert(std::this_thread::get_id());
    }
    JobResult r;
    r.outcome = JobResult::Outcome::kSucceeded;
    r.cleanup = [&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        cleanup_threads.insert(std::this_thread::get_id());
      }
      while (hold) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    return r;
  };
  Slots s(1, fn);
  // One cleanup runs on the janitor, two wait (the bound is max(2, slots));
  // the fourth is the slot's own.
  s.Add("t-1", 1, 1);
  ASSERT_TRUE(WaitFor([&] {  // the janitor holds it
    std::lock_guard<std::mutex> lock(mu);
    return cleanup_threads.size() == 1;
  }));
  for (int i = 2; i <= 4; ++i) s.Add("t-" + std::to_string(i), i, i);
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return cleanup_threads.size() == 2;
  }));
  EXPECT_EQ(s.loop.cleanups_pending(), 3);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(cleanup_threads.count(*slot_threads.begin()));
  }
  hold = false;
  ASSERT_TRUE(WaitFor([&] { return s.loop.cleanups_pending() == 0; }));
}

TEST(SlotLoop, AJobThatThrowsIsAckedReportedFailedAndTheSlotServesTheNext) {
  std::mutex mu;
  std::map<long long, std::string> reports;
  std::atomic<int> calls{0};
  JobFn run = [&](int, const RunArgs& args, CancelToken&) -> JobResult {
    ++calls;
    if (args.id == 1) throw std::runtime_error("boom");
    if (args.id == 2) throw std::bad_alloc();
    if (args.id == 3) throw 42;  // not even a std::exception
    JobResult r;
    r.outcome = JobResult::Outcome::kSucceeded;
    return r;
  };
  Slots s(1, run, [&](const nlohmann::json& raw, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    reports[raw.value("id", -1LL)] = reason;
  });
  for (int i = 1; i <= 4; ++i) s.Add("t-" + std::to_string(i), i, 10 + i);
  ASSERT_TRUE(WaitFor([&] { return s.acker.ack_count() == 4; }));
  EXPECT_EQ(calls, 4);
  EXPECT_TRUE(s.acker.rejects.empty());
  ASSERT_TRUE(WaitFor([&] { return s.reports.pending() == 0; }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(reports.size(), 3u);  // the job that succeeded is not reported
  EXPECT_EQ(reports[1], "The worker hit an internal error while running this job: boom");
  EXPECT_THAT(reports[2], HasSubstr("out of memory"));
  EXPECT_THAT(reports[3], HasSubstr("internal error"));
  EXPECT_EQ(s.ledger.processed(), 4);
}

}  // namespace
}  // namespace cw
