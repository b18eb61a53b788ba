#include "worker/status_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker/status_board.h"

namespace cw {
namespace {
using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatusText, Durations) {
  EXPECT_EQ(FormatDuration(4.26), "4.3s");
  EXPECT_EQ(FormatDuration(192), "3m 12s");
  EXPECT_EQ(FormatDuration(7980), "2h 13m");
  EXPECT_EQ(FormatDuration(3 * 86400 + 4 * 3600 + 5), "3d 4h");
  EXPECT_EQ(FormatDuration(-1), "?");
}

TEST(StatusText, ABoardAsAPersonReadsIt) {
  StatusBoard board("compute-worker@gpu1", "0.9.0", {{{"0 (GPU-aaa)"}, "0-7"}, {{}, "8-15"}});
  board.BrokerState(true);
  board.EngineState(true, "");
  board.JobStarted(0, "task-1", 412, false);
  board.JobSiteStatus(0, "Running");
  board.JobStarted(1, "task-0", 411, true);
  board.JobEnded(1, "failed", "The scoring program exited with code 3");
  const std::string text = FormatStatus(board.Json());
  EXPECT_THAT(text, HasSubstr("compute-worker@gpu1  codabench-worker 0.9.0"));
  EXPECT_THAT(text, HasSubstr("broker    connected since"));
  EXPECT_THAT(text, HasSubstr("engine    ok"));
  EXPECT_THAT(text, HasSubstr("draining  no"));
  EXPECT_THAT(text, HasSubstr("0     0 (GPU-aaa)  0-7   submission 412 prediction, Running for"));
  EXPECT_THAT(text, HasSubstr("task task-1"));
  EXPECT_THAT(text, HasSubstr("1     -            8-15  idle"));
  EXPECT_THAT(text, HasSubstr("411         scoring  1     failed   "));
  EXPECT_THAT(text, HasSubstr("The scoring program exited with code 3"));
}

// A reason quoting a zip entry's name cannot drive the admin's terminal.
TEST(StatusText, ControlCharactersInReasonsAreEscaped) {
  StatusBoard board("compute-worker@gpu1", "0.9.0", {{{}, ""}});
  board.JobStarted(0, "task-0", 411, false);
  board.JobEnded(0, "failed", "bad entry 'x\x1b]0;owned\x07\ny'");
  const std::string text = FormatStatus(board.Json());
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_THAT(text, HasSubstr("bad entry 'x\\x1b]0;owned\\x07"));
  EXPECT_THAT(text, Not(HasSubstr("y'")));  // the board keeps a reason's first line only
}

TEST(StatusText, AnAnswerWithFieldsMissingStillPrints) {
  const std::string text = FormatStatus(nlohmann::json::object());
  EXPECT_THAT(text, HasSubstr("broker    NOT connected"));
  EXPECT_THAT(text, HasSubstr("last jobs: none yet"));
}

}  // namespace
}  // namespace cw
