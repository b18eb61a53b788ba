#include "job/program_run.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "job/supervisor.h"
#include "job/test_fakes.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using cw::testing::ReadFile;
using ::testing::HasSubstr;
using testing::FakeEngine;
using testing::RecordingReporter;
using namespace std::chrono_literals;

class ProgramRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-program-run-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    engine_.images.insert("img");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  std::unique_ptr<ProgramRun> Created(ProgramKind kind = ProgramKind::kProgram,
                                      std::uint64_t cap = 0) {
    ContainerSpec spec;
    spec.image = "img";
    spec.labels["org.codabench.kind"] = ProgramKindName(kind);
    auto id = engine_.Create(spec);
    EXPECT_TRUE(id.ok());
    auto output = std::make_unique<ProgramOutput>(kind, reporter_, tmp_, cap);
    EXPECT_TRUE(output->ok());
    return std::make_unique<ProgramRun>(kind, "submission", *id, std::move(output), "mem://out",
                                        "mem://err");
  }

  fs::path tmp_;
  FakeEngine engine_;
  RecordingReporter reporter_;
  CancelToken cancel_;
};

TEST(LogFileTest, PastItsCapTheRestIsDroppedWithANote) {
  fs::path p = fs::temp_directory_path() / ("cw-logfile-" + RandomHex(4));
  {
    LogFile log(p, 1000);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 100; ++i) log.Write(std::string(300, 'y'));
  }
  std::string text = ReadFile(p);
  EXPECT_LT(text.size(), 1200u);
  EXPECT_EQ(text.substr(0, 1000), std::string(1000, 'y'));
  EXPECT_THAT(text, HasSubstr("[codabench-worker: output past 0 MiB was dropped]"));
  fs::remove(p);
}

TEST_F(ProgramRunTest, StreamsToTheFilesAndTheReporterAndKeepsTheExitCode) {
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn& out,
                                   const std::atomic<bool>&) {
    out(StreamKind::kStdout, "hello\n");
    out(StreamKind::kStderr, "oops\n");
    return 3;
  };
  auto run = Created();
  std::atomic<int> changes{0};
  run->Start(engine_, cancel_, 0, 7, [&] { ++changes; });
  run->Join();
  EXPECT_TRUE(run->running());
  EXPECT_TRUE(run->done());
  EXPECT_EQ(changes, 2);  // started, ended
  ProgramEnd end = run->End();
  EXPECT_EQ(end.outcome.exit_code, 3);
  EXPECT_TRUE(end.outcome.elapsed_seconds.has_value());
  EXPECT_TRUE(end.error.ok());
  EXPECT_FALSE(end.oom_killed);
  EXPECT_EQ(ReadFile(run->output().stdout_path()), "hello\n");
  EXPECT_EQ(ReadFile(run->output().stderr_path()), "oops\n");
  EXPECT_EQ(run->output().stdout_path(), tmp_ / "program.stdout");
  EXPECT_EQ((reporter_.logs[{ProgramKind::kProgram, LogStream::kStderr}]), "oops\n");
}

TEST_F(ProgramRunTest, TheEngineSaysWhetherItRanOutOfMemory) {
  engine_.oom_kinds.insert("ingestion");
  engine_.programs["ingestion"] = [](const ContainerSpec&, const OutputFn&,
                                     const std::atomic<bool>&) { return 137; };
  auto run = Created(ProgramKind::kIngestion);
  run->Start(engine_, cancel_, 0, 7, [] {});
  run->Join();
  EXPECT_TRUE(run->End().oom_killed);
}

TEST_F(ProgramRunTest, AStartFailureIsItsErrorAndAnAdminsLimitIsNamed) {
  engine_.start_status = Unavailable("error setting rlimit type 7: operation not permitted");
  auto run = Created();
  run->Start(engine_, cancel_, 1 << 20, 7, [] {});
  run->Join();
  EXPECT_FALSE(run->running());
  EXPECT_TRUE(run->done());
  EXPECT_THAT(run->End().error.message(), HasSubstr("CONTAINER_NOFILE_LIMIT (1048576)"));
}

TEST_F(ProgramRunTest, NoExitCodeIsAnError) {
  engine_.wait_status = NotFound("No such container");
  auto run = Created();
  run->Start(engine_, cancel_, 0, 7, [] {});
  run->Join();
  EXPECT_EQ(run->End().error.message(),
            "The submission did not report an exit code: No such container");
}

TEST_F(ProgramRunTest, SupervisorReturnsWhenAllEnded) {
  auto a = Created(ProgramKind::kProgram);
  auto b = Created(ProgramKind::kIngestion);
  Wakeup wakeup;
  std::atomic<bool> too_large{false};
  for (auto* run : {a.get(), b.get()}) run->Start(engine_, cancel_, 0, 7, [&] { wakeup.Notify(); });
  int all_running = 0;
  ProgramsStop stop = Supervise({a.get(), b.get()}, std::chrono::steady_clock::now() + 30s,
                                cancel_, too_large, wakeup, [&] { ++all_running; });
  EXPECT_EQ(stop, ProgramsStop::kAllEnded);
  EXPECT_EQ(all_running, 1);
}

TEST_F(ProgramRunTest, SupervisorStopsForTheDeadlineACancelOrTheOutputLimit) {
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>& killed) {
    while (!killed) std::this_thread::sleep_for(1ms);
    return 137;
  };
  Wakeup wakeup;
  std::atomic<bool> too_large{false};
  auto supervise = [&](std::chrono::steady_clock::duration left) {
    auto run = Created();
    run->Start(engine_, cancel_, 0, 7, [&] { wakeup.Notify(); });
    ProgramsStop stop = Supervise({run.get()}, std::chrono::steady_clock::now() + left, cancel_,
                                  too_large, wakeup, [] {});
    EXPECT_TRUE(engine_.Kill(run->container_id()).ok());
    run->Join();
    return stop;
  };
  EXPECT_EQ(supervise(20ms), ProgramsStop::kTimedOut);
  std::thread limit([&] {
    std::this_thread::sleep_for(20ms);
    too_large = true;
    wakeup.Notify();
  });
  EXPECT_EQ(supervise(30s), ProgramsStop::kOutputTooLarge);
  limit.join();
  too_large = false;
  cancel_.Cancel("revoked");
  EXPECT_EQ(supervise(30s), ProgramsStop::kCancelled);
}

}  // namespace
}  // namespace cw
