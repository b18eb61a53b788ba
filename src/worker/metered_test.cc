#include "worker/metered.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/abandon.h"
#include "job/test_fakes.h"
#include "storage/test_util.h"

namespace cw {
namespace {
using testing::FakeStorage;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RecordingReporter;

class MeteredStorageTest : public testing_util::TempDirTest {};

TEST_F(MeteredStorageTest, CountsTheBytesMovedAndTheTransfersThatFailed) {
  metrics::WorkerMetrics metrics(1);
  FakeStorage inner(root_ / "store");
  MeteredStorage storage(inner, metrics);
  WriteFile(root_ / "store" / "a", std::string(1234, 'x'));
  ASSERT_TRUE(storage.Fetch("mem://a", root_ / "a.copy").ok());
  ASSERT_TRUE(storage.Put("mem://b", root_ / "a.copy", "application/zip").ok());
  EXPECT_FALSE(storage.Fetch("mem://missing", root_ / "m").ok());
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("codabench_worker_downloaded_bytes_total 1234"));
  EXPECT_THAT(text, HasSubstr("codabench_worker_uploaded_bytes_total 1234"));
  EXPECT_THAT(text, HasSubstr("codabench_worker_site_errors_total{call=\"download\"} 1"));
}

TEST_F(MeteredStorageTest, ATransferGivenUpForARevokeIsNotTheSitesFailure) {
  metrics::WorkerMetrics metrics(1);
  FakeStorage inner(root_ / "store");
  MeteredStorage storage(inner, metrics);
  AbandonScope revoked([] { return true; });
  EXPECT_FALSE(storage.Fetch("mem://missing", root_ / "m").ok());
  EXPECT_THAT(metrics.Render(), Not(HasSubstr("call=\"download\"")));
}

TEST(MeteredReporter, CountsFailedCallsAndShowsTheStatusOnTheBoard) {
  metrics::WorkerMetrics metrics(1);
  StatusBoard board("node@test", "1.0", {{}});
  board.JobStarted(0, "t-1", 42, false);
  RecordingReporter inner;
  inner.scores_status = Unavailable("the site is down");
  MeteredReporter reporter(inner, &metrics, board, 0);
  EXPECT_FALSE(reporter.last_status());
  ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kRunning, "").ok());
  EXPECT_TRUE(reporter.last_status());
  EXPECT_EQ(board.Json()["slots"][0]["job"]["site_status"], "Running");
  EXPECT_FALSE(reporter.ReportScores({{"score", 1}}).ok());
  EXPECT_THAT(metrics.Render(), HasSubstr("codabench_worker_site_errors_total{call=\"scores\"} 1"));
  EXPECT_EQ(inner.StatusSequence(), std::vector<JobStatus>{JobStatus::kRunning});
}

}  // namespace
}  // namespace cw
