#include "worker/remote_control.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker/test_helpers.h"

namespace cw {
namespace {
using ::testing::HasSubstr;
using worker_testing::MakeJob;
using worker_testing::RecordingAcker;

ControlMessage Command(const std::string& method,
                       nlohmann::json arguments = nlohmann::json::object()) {
  ControlMessage m;
  m.method = method;
  m.arguments = std::move(arguments);
  return m;
}

TEST(RemoteControl, AnswersPingActiveAndRegistered) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  RemoteControl control("compute-worker@box", 3, ledger);
  EXPECT_EQ(control.Answer(Command("ping")), nlohmann::json({{"ok", "pong"}}));
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-1", 42, 1, 7)));
  EXPECT_TRUE(control.Answer(Command("active")).empty());  // queued is not active
  ASSERT_NE(ledger.Take(2), nullptr);
  nlohmann::json active = control.Answer(Command("active"));
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0]["id"], "t-1");
  EXPECT_EQ(active[0]["hostname"], "compute-worker@box");
  EXPECT_EQ(active[0]["worker_slot"], 2);
  // `inspect active` ends up in people's terminals: no secrets, no signed URLs.
  EXPECT_EQ(active[0]["args"][0]["secret"], "<redacted>");
  EXPECT_EQ(active[0]["args"][0]["prediction_result"], "<redacted>");
  EXPECT_EQ(active[0]["args"][0]["docker_image"], "img");
  EXPECT_EQ(control.Answer(Command("registered")), nlohmann::json::array({"compute_worker_run"}));
  nlohmann::json stats = control.Answer(Command("stats"));
  EXPECT_EQ(stats["pool"]["max-concurrency"], 3);
  EXPECT_EQ(stats["active"], 1);
  EXPECT_THAT(control.Answer(Command("shutdown"))["error"].get<std::string>(),
              HasSubstr("unknown command"));
}

TEST(RemoteControl, RevokeTakesOneIdOrAListAndTerminates) {
  RecordingAcker acker;
  DeliveryLedger ledger(acker, 10);
  RemoteControl control("n", 1, ledger);
  ASSERT_TRUE(ledger.Enqueue(MakeJob("t-1", 42, 1, 7)));
  auto job = ledger.Take(0);
  nlohmann::json reply = control.Answer(
      Command("revoke", {{"task_id", "t-1"}, {"terminate", true}, {"signal", "SIGTERM"}}));
  EXPECT_THAT(reply["ok"].get<std::string>(), HasSubstr("t-1"));
  EXPECT_EQ(job->cancel.reason(), "revoked");
  reply = control.Answer(Command("revoke", {{"task_id", nlohmann::json::array({"t-3", "t-2"})}}));
  EXPECT_EQ(reply["ok"], "tasks t-3, t-2 flagged as revoked");
  EXPECT_EQ(control.Answer(Command("revoked")), nlohmann::json({"t-1", "t-2", "t-3"}));
}

}  // namespace
}  // namespace cw
