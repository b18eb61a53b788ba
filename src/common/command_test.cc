#include "common/command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

namespace cw {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(RunCommand, CollectsStdoutAndStderrAndTheExitCode) {
  auto out = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, 5000ms);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->exit_code, 3);
  EXPECT_THAT(out->output, HasSubstr("out\n"));
  EXPECT_THAT(out->output, HasSubstr("err\n"));
}

TEST(RunCommand, StdinIsEmpty) {
  auto out = RunCommand({"sh", "-c", "cat; echo done"}, 5000ms);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->output, "done\n");
}

TEST(RunCommand, MissingProgramIsNotFound) {
  auto out = RunCommand({"cw-no-such-program-xyz"}, 5000ms);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kNotFound);
  EXPECT_EQ(out.status().message(), "cw-no-such-program-xyz is not installed (not found in PATH)");
}

TEST(RunCommand, SlowProgramIsKilledAtTheTimeout) {
  auto start = std::chrono::steady_clock::now();
  auto out = RunCommand({"sleep", "30"}, 200ms);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kTimeout);
  EXPECT_EQ(out.status().message(), "sleep did not finish within 200 ms and was killed");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunCommand, ProgramThatClosesItsOutputButLingersIsKilledToo) {
  auto start = std::chrono::steady_clock::now();
  auto out = RunCommand({"sh", "-c", "exec >/dev/null 2>&1; exec sleep 30"}, 300ms);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunCommand, KilledBySignalReports128PlusTheSignal) {
  auto out = RunCommand({"sh", "-c", "kill -TERM $$"}, 5000ms);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->exit_code, 128 + 15);
}

TEST(RunCommand, ChildStartsWithNoBlockedSignals) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  auto out = RunCommand({"sh", "-c", "grep SigBlk /proc/self/status"}, 5000ms);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->output, "SigBlk:\t0000000000000000\n");
}

TEST(RunCommand, OutputIsCappedAtOneMebibyte) {
  auto out = RunCommand({"sh", "-c", "head -c 3000000 /dev/zero"}, 10000ms);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->exit_code, 0);
  EXPECT_EQ(out->output.size(), 1u << 20);
}

TEST(RunCommand, EmptyArgvIsABug) {
  auto out = RunCommand({}, 1000ms);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace cw
