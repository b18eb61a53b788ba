#include "worker/status_board.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace cw {
namespace {
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSecret = "0b7f9c1e-5d2a-4c8e-9f3b-6a1d2e4c8b7f";

TEST(StatusBoard, ShowsTheWorkerAndItsSlots) {
  StatusBoard board("compute-worker@gpu1", "1.2.3", {{{"0 (GPU-aaa)"}, "0-7"}, {{}, ""}});
  nlohmann::json s = board.Json();
  EXPECT_EQ(s["node"], "compute-worker@gpu1");
  EXPECT_EQ(s["version"], "1.2.3");
  EXPECT_GE(s["uptime_s"].get<double>(), 0);
  EXPECT_GT(s["started_at"].get<double>(), 1.7e9);
  EXPECT_FALSE(s["broker"]["connected"].get<bool>());
  EXPECT_TRUE(s["broker"]["since"].is_null());
  EXPECT_TRUE(s["engine"]["ok"].is_null());  // not checked yet
  ASSERT_EQ(s["slots"].size(), 2u);
  EXPECT_EQ(s["slots"][0]["gpus"], nlohmann::json::array({"0 (GPU-aaa)"}));
  EXPECT_EQ(s["slots"][0]["cpus"], "0-7");
  EXPECT_TRUE(s["slots"][0]["job"].is_null());
  EXPECT_TRUE(s["last_jobs"].empty());
}

TEST(StatusBoard, ARunningJobAndThenItsEnd) {
  StatusBoard board("n", "v", {{}, {}});
  board.JobStarted(1, "task-9", 412, /*scoring=*/true);
  board.JobSiteStatus(1, "Running");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  nlohmann::json s = board.Json();
  EXPECT_TRUE(s["slots"][0]["job"].is_null());
  const nlohmann::json& job = s["slots"][1]["job"];
  EXPECT_EQ(job["task_id"], "task-9");
  EXPECT_EQ(job["submission"], 412);
  EXPECT_EQ(job["stage"], "scoring");
  EXPECT_EQ(job["site_status"], "Running");
  EXPECT_GE(job["running_s"].get<double>(), 0.02);
  EXPECT_NEAR(job["started_at"].get<double>(), s["now"].get<double>(), 5);

  board.JobEnded(1, "failed", "The scoring program exited with code 3\nTraceback ...", kSecret);
  s = board.Json();
  EXPECT_TRUE(s["slots"][1]["job"].is_null());
  EXPECT_EQ(s["jobs_done"], 1);
  ASSERT_EQ(s["last_jobs"].size(), 1u);
  const nlohmann::json& done = s["last_jobs"][0];
  EXPECT_EQ(done["submission"], 412);
  EXPECT_EQ(done["stage"], "scoring");
  EXPECT_EQ(done["slot"], 1);
  EXPECT_EQ(done["outcome"], "failed");
  EXPECT_EQ(done["reason"], "The scoring program exited with code 3");  // first line only
  EXPECT_GE(done["duration_s"].get<double>(), 0.02);
  EXPECT_GE(done["ended_at"].get<double>(), done["started_at"].get<double>());
}

TEST(StatusBoard, KeepsTheLastJobsNewestFirst) {
  StatusBoard board("n", "v", {{}}, /*keep_last=*/20);
  for (int i = 0; i < 25; ++i) {
    board.JobStarted(0, "t" + std::to_string(i), i, false);
    board.JobEnded(0, "succeeded", "");
  }
  nlohmann::json s = board.Json();
  ASSERT_EQ(s["last_jobs"].size(), 20u);
  EXPECT_EQ(s["last_jobs"][0]["submission"], 24);
  EXPECT_EQ(s["last_jobs"][19]["submission"], 5);
  EXPECT_EQ(s["jobs_done"], 25);
}

TEST(StatusBoard, NeverShowsASecretOrASignature) {
  StatusBoard board("n", "v", {{}});
  board.JobStarted(0, "t", 1, false);
  board.JobEnded(0, "failed",
                 "Upload to https://minio:9000/bucket/out.zip?X-Amz-Signature=deadbeef failed for "
                 "ws://site/submission_input/1/2/" +
                     kSecret + "/ (secret " + kSecret + ")",
                 kSecret);
  const std::string text = board.Json().dump();
  EXPECT_THAT(text, Not(HasSubstr(kSecret)));
  EXPECT_THAT(text, Not(HasSubstr("deadbeef")));
  EXPECT_THAT(text, Not(HasSubstr("X-Amz")));
  EXPECT_THAT(text, HasSubstr("https://minio:9000/bucket/out.zip failed"));
}

TEST(StatusBoard, SafeReasonIsOneShortLine) {
  std::string long_reason(1000, 'x');
  std::string safe = StatusBoard::SafeReason(long_reason, "");
  EXPECT_LE(safe.size(), 303u);
  EXPECT_THAT(safe, HasSubstr("..."));
  // Cut at 300 bytes, never inside a UTF-8 character (JSON would refuse it).
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xc3\xa9";
  EXPECT_NO_THROW(nlohmann::json(StatusBoard::SafeReason(accents, "")).dump());
  EXPECT_EQ(StatusBoard::SafeReason("a\r\nb", ""), "a");
}

TEST(StatusBoard, BrokerReconnectsEngineAndDrain) {
  StatusBoard board("n", "v", {{}});
  board.BrokerState(true);
  board.BrokerState(false);
  board.BrokerState(true);
  board.BrokerState(true);  // no change: not a reconnect
  board.EngineState(false, "cannot reach the Docker engine\nat unix:///var/run/docker.sock");
  board.Draining();
  nlohmann::json s = board.Json();
  EXPECT_TRUE(s["broker"]["connected"].get<bool>());
  EXPECT_EQ(s["broker"]["reconnects"], 1);
  EXPECT_GT(s["broker"]["since"].get<double>(), 0);
  EXPECT_FALSE(s["engine"]["ok"].get<bool>());
  EXPECT_EQ(s["engine"]["reason"], "cannot reach the Docker engine");
  EXPECT_TRUE(s["draining"].get<bool>());
}

TEST(StatusBoard, IgnoresSlotsItDoesNotHave) {
  StatusBoard board("n", "v", {{}});
  board.JobStarted(3, "t", 1, false);
  board.JobStarted(-1, "t", 1, false);
  board.JobEnded(3, "failed", "x");
  board.JobEnded(0, "failed", "x");  // nothing runs there
  nlohmann::json s = board.Json();
  EXPECT_TRUE(s["slots"][0]["job"].is_null());
  EXPECT_TRUE(s["last_jobs"].empty());
}

}  // namespace
}  // namespace cw
