#include "worker/delivery_ledger.h"

#include <gtest/gtest.h>

#include "worker/test_helpers.h"

namespace cw {
namespace {
using worker_testing::MakeJob;
using worker_testing::RecordingAcker;
using Admission = DeliveryLedger::Admission;

TEST(DeliveryLedger, AJobIsAckedOnceItEnds) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  ASSERT_EQ(ledger.Admit(1, 7, "t-1"), Admission::kNew);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-1", 42, 1, 7)));
  EXPECT_EQ(ledger.queued(), 1);
  auto job = ledger.Take(0);
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(ledger.active(), 1);
  EXPECT_EQ(acker.ack_count(), 0u);  // acks late: not while the job runs
  ledger.Finish(*job, JobResult::Outcome::kSucceeded);
  ASSERT_EQ(acker.acks.size(), 1u);
  EXPECT_EQ(acker.acks[0], std::make_pair(std::uint64_t{1}, std::uint64_t{7}));
  EXPECT_EQ(ledger.processed(), 1);
  EXPECT_EQ(ledger.active(), 0);
}

TEST(DeliveryLedger, RedeliveryWhileRunningRunsOnceAndAcksBothCopies) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  ASSERT_EQ(ledger.Admit(1, 7, "t-1"), Admission::kNew);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-1", 42, 1, 7)));
  auto job = ledger.Take(0);
  // The connection dropped; the broker hands the message out again.
  EXPECT_EQ(ledger.Admit(2, 1, "t-1"), Admission::kKnown);
  EXPECT_EQ(ledger.queued(), 0);
  EXPECT_EQ(ledger.Running().at(0).redelivered, true);
  ledger.Finish(*job, JobResult::Outcome::kSucceeded);
  ASSERT_EQ(acker.acks.size(), 2u);
  EXPECT_EQ(acker.acks[1], std::make_pair(std::uint64_t{2}, std::uint64_t{1}));
  // And a copy arriving after the end is acked without running again.
  EXPECT_EQ(ledger.Admit(3, 1, "t-1"), Admission::kKnown);
  EXPECT_EQ(acker.acks.size(), 3u);
  EXPECT_EQ(ledger.queued(), 0);
}

TEST(DeliveryLedger, RemembersOnlyTheLastFinishedTasks) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 1);
  for (const char* id : {"t-1", "t-2"}) {
    ASSERT_EQ(ledger.Admit(1, 1, id), Admission::kNew);
    ASSERT_TRUE(ledger.Enqueue(MakeJob(id, 1, 1, 1)));
    ledger.Finish(*ledger.Take(0), JobResult::Outcome::kSucceeded);
  }
  EXPECT_EQ(ledger.Admit(2, 1, "t-2"), Admission::kKnown);
  EXPECT_EQ(ledger.Admit(2, 2, "t-1"), Admission::kNew);  // forgotten: runs again
}

TEST(DeliveryLedger, RevokedBeforeArrivalIsDroppedAndQueuedIsRemoved) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  ledger.Revoke({"t-9"}, true);
  EXPECT_EQ(ledger.Admit(1, 3, "t-9"), Admission::kKnown);
  EXPECT_EQ(acker.ack_count(), 1u);

  ASSERT_EQ(ledger.Admit(1, 4, "t-a"), Admission::kNew);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-a", 2, 1, 4)));
  auto running = ledger.Take(0);
  ASSERT_EQ(ledger.Admit(1, 5, "t-b"), Admission::kNew);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-b", 3, 1, 5)));
  EXPECT_EQ(ledger.queued(), 1);
  ledger.Revoke({"t-b"}, false);
  EXPECT_EQ(ledger.queued(), 0);
  EXPECT_EQ(acker.ack_count(), 2u);
  EXPECT_EQ(ledger.RevokedIds(), (std::vector<std::string>{"t-9", "t-b"}));
  // Without terminate, the running job goes on.
  ledger.Revoke({"t-a"}, false);
  EXPECT_FALSE(running->cancel.cancelled());
  ledger.Revoke({"t-a"}, true);
  EXPECT_TRUE(running->cancel.cancelled());
  EXPECT_FALSE(running->cancel.report());  // a revoked job reports nothing more
}

TEST(DeliveryLedger, DrainHandsBackQueuedJobsAndLaterDeliveries) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  ASSERT_EQ(ledger.Admit(1, 7, "t-1"), Admission::kNew);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-1", 42, 1, 7)));
  auto running = ledger.Take(0);
  ASSERT_EQ(ledger.Admit(1, 8, "t-2"), Admission::kNew);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-2", 43, 1, 8)));  // prefetched, waiting
  EXPECT_EQ(ledger.BeginDrain(), 1);
  ASSERT_EQ(acker.rejects.size(), 1u);
  EXPECT_EQ(acker.rejects[0].tag, 8u);
  EXPECT_TRUE(acker.rejects[0].requeue);
  EXPECT_EQ(ledger.queued(), 0);
  // A delivery sent before the broker saw basic.cancel goes back too.
  EXPECT_EQ(ledger.Admit(1, 9, "t-3"), Admission::kHandedBack);
  ASSERT_EQ(acker.rejects.size(), 2u);
  EXPECT_EQ(acker.rejects[1].tag, 9u);
  EXPECT_TRUE(acker.rejects[1].requeue);
  // So does one admitted just before the drain began.
  EXPECT_FALSE(ledger.Enqueue(MakeJob("t-4", 44, 1, 10)));
  ASSERT_EQ(acker.rejects.size(), 3u);
  EXPECT_TRUE(acker.rejects[2].requeue);
  // The running one finishes and is acked.
  ledger.Finish(*running, JobResult::Outcome::kSucceeded);
  ASSERT_EQ(acker.acks.size(), 1u);
  EXPECT_EQ(acker.acks[0].second, 7u);
}

TEST(DeliveryLedger, StopCancelsRunningJobsAndLeavesThemUnackedUnlessRevoked) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  for (auto [id, tag] : {std::pair{"t-1", 1}, std::pair{"t-2", 2}}) {
    ASSERT_EQ(ledger.Admit(1, tag, id), Admission::kNew);
    ASSERT_TRUE(ledger.Enqueue(MakeJob(id, tag, 1, tag)));
  }
  auto a = ledger.Take(0);
  auto b = ledger.Take(1);
  ledger.Revoke({"t-2"}, true);
  ledger.Stop();
  EXPECT_TRUE(a->cancel.cancelled());
  EXPECT_EQ(a->cancel.reason(), "the worker is shutting down");
  EXPECT_EQ(ledger.Take(0), nullptr);
  ledger.Finish(*a, JobResult::Outcome::kCancelled);  // another worker gets it
  ledger.Finish(*b, JobResult::Outcome::kCancelled);  // revoked: final
  ASSERT_EQ(acker.acks.size(), 1u);
  EXPECT_EQ(acker.acks[0].second, 2u);
}

TEST(DeliveryLedger, TimeLimitsCancelTheJobWithAReport) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  auto soft = MakeJob("t-soft", 1, 1, 1);
  soft->soft_limit_s = 10;
  auto hard = MakeJob("t-hard", 2, 1, 2);
  hard->soft_limit_s = 5;
  hard->hard_limit_s = 20;
  ASSERT_TRUE(ledger.Enqueue(soft));
  ASSERT_TRUE(ledger.Enqueue(hard));
  ASSERT_EQ(ledger.Take(0), soft);
  ASSERT_EQ(ledger.Take(1), hard);
  const auto start = std::max(soft->started, hard->started);
  ledger.EnforceTimeLimits(start + std::chrono::seconds(4));
  EXPECT_FALSE(soft->cancel.cancelled());
  EXPECT_FALSE(hard->cancel.cancelled());
  ledger.EnforceTimeLimits(start + std::chrono::seconds(25));
  EXPECT_TRUE(soft->cancel.report());
  EXPECT_EQ(soft->cancel.reason(), "Execution time limit exceeded.");
  EXPECT_TRUE(hard->cancel.report());
  EXPECT_EQ(hard->cancel.reason(), "Hard time limit exceeded (20 s)");
}

}  // namespace
}  // namespace cw
