#include "job/job_runner.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "archive/zip.h"
#include "common/abandon.h"
#include "common/files.h"
#include "job/job_runner_test_fixture.h"
#include "job/test_fakes.h"
#include "storage/hash.h"

// What a job may use and what it leaves: output limits, the private folder, container limits, usage and GPU figures, detailed results.
namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using job_testing::JobRunnerTest;
using job_testing::kImage;
using job_testing::ReadFile;
using testing::FakeEngine;
using testing::FakeGpuMeter;
using testing::FakeStorage;
using testing::RecordingReporter;
using testing::WriteFile;

TEST_F(JobRunnerTest, FloodedOutputIsCappedOnDisk) {
  env_.max_log_bytes = 1000;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: yes\n"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn& out,
                                   const std::atomic<bool>&) {
    std::string chunk(300, 'y');
    for (int i = 0; i < 100; ++i) out(StreamKind::kStdout, chunk);
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  std::string log = storage_->Read("mem://p_stdout");
  EXPECT_LT(log.size(), 1200u);
  EXPECT_THAT(log, HasSubstr("was dropped"));
}

TEST_F(JobRunnerTest, OutputPastTheLimitStopsTheProgramsAndFails) {
  env_.limits.max_output_bytes = 1'000'000;
  env_.limits.output_check_interval = std::chrono::milliseconds(20);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: fill\n"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>& killed) {
    fs::path out = FakeEngine::HostPathOf(spec, "/app/output");
    std::ofstream(fs::path(out) / "big") << std::string(2'000'000, 'x');
    for (int i = 0; i < 500 && !killed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return killed ? 137 : 0;
  };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(),
              HasSubstr("Job output larger than 0.001 GB (MAX_OUTPUT_SIZE_GB=0.001)"));
  EXPECT_FALSE(engine_.killed_ids.empty());
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
}

TEST_F(JobRunnerTest, WritesInsideTheContainerCountTowardsTheOutputLimit) {
  env_.limits.max_output_bytes = 1'000'000;
  env_.limits.output_check_interval = std::chrono::milliseconds(10);
  engine_.writable_bytes = 5'000'000;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: fill-tmp\n"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>& killed) {
    for (int i = 0; i < 500 && !killed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return killed ? 137 : 0;
  };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("MAX_OUTPUT_SIZE_GB"));
}

TEST_F(JobRunnerTest, UnpackedBundlesDoNotCountAsOutput) {
  env_.limits.max_output_bytes = 1'000'000;
  env_.limits.output_check_interval = std::chrono::milliseconds(10);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: sleep\n"},
                                    {"weights.bin", std::string(3'000'000, 'w')}});
  // The disk watcher measures several times while the program runs: on the
  // job's clock, moved by hand (its waiters: the loop, the usage sampler
  // and the disk watcher).
  test_env_.UseManualClock();
  engine_.programs["program"] = [this](const ContainerSpec&, const OutputFn&,
                                       const std::atomic<bool>&) {
    for (int i = 0; i < 5; ++i) {
      test_env_.Advance(std::chrono::milliseconds(50));
      EXPECT_TRUE(test_env_.AwaitSleepers(3));
    }
    return 0;
  };
  JobResult r = Run(a);
  EXPECT_TRUE(r.ok()) << r.failure.ToString();
}

// A scoring program may leave detailed_results.html as a link to a host file
// (the worker's .env): it must never be read, nor reach the site.
TEST_F(JobRunnerTest, ALinkedDetailedResultsFileIsNeverSent) {
  const std::string marker = "BROKER_URL=pyamqp://secret-marker";
  WriteFile(tmp_ / "host-secret", marker);
  RunArgs a = Scoring();
  a.detailed_results_url = "mem://detailed.html";
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: score\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  fs::path secret = tmp_ / "host-secret";
  test_env_.UseManualClock();
  engine_.programs["program"] = [this, secret](const ContainerSpec& spec, const OutputFn&,
                                               const std::atomic<bool>&) {
    fs::path out = FakeEngine::HostPathOf(spec, "/app/output");
    fs::create_symlink(secret, out / "detailed_results.html");
    std::ofstream(out / "scores.json") << R"({"accuracy": 1})";
    // The watcher looks while the program runs (waiters: the loop, the
    // usage sampler, the detailed results watcher).
    for (int i = 0; i < 3; ++i) {
      test_env_.Advance(std::chrono::seconds(3));
      EXPECT_TRUE(test_env_.AwaitSleepers(3));
    }
    return 0;
  };
  JobResult r = Run(a);
  EXPECT_FALSE(storage_->WasPut("mem://detailed.html"));
  EXPECT_EQ(reporter_.detailed_updates, 0);
  for (const auto& e : reporter_.live_errors) EXPECT_EQ(e.find("secret-marker"), std::string::npos);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  fs::path out = Unpacked(a.scoring_result);
  EXPECT_FALSE(fs::exists(fs::symlink_status(out / "detailed_results.html")));
}

TEST_F(JobRunnerTest, TheJobsFolderIsPrivate) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  fs::perms jobs_perms = fs::perms::unknown;
  fs::path jobs = env_.base_dir / "jobs";
  engine_.programs["program"] = [&](const ContainerSpec&, const OutputFn&,
                                    const std::atomic<bool>&) {
    jobs_perms = fs::status(jobs).permissions();
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(jobs_perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST_F(JobRunnerTest, ContainersGetThePidsAndOpenFileLimitsAndNoNewPrivileges) {
  env_.container.pids_limit = 4096;
  env_.container.nofile_limit = 65536;
  env_.container.podman = true;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  ASSERT_EQ(engine_.created.size(), 1u);
  EXPECT_EQ(engine_.created[0].pids_limit, 4096);
  EXPECT_EQ(engine_.created[0].nofile_limit, 65536);
  EXPECT_THAT(engine_.created[0].security_opt,
              ElementsAre("no-new-privileges", "label=disable"));
}

// Rootless on cgroups v1 (engine/engine.h UnenforcedLimits): each job's log
// says which limits do not hold, once, before the programs run.
TEST_F(JobRunnerTest, LimitsTheEngineCannotEnforceAreToldInTheJobsLog) {
  env_.unenforced_limits = "the programs' memory limit is not enforced";
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_THAT(reporter_.live_errors, ElementsAre("the programs' memory limit is not enforced"));

  env_.unenforced_limits.clear();
  reporter_.live_errors.clear();
  ASSERT_TRUE(Run(a).ok());
  EXPECT_TRUE(reporter_.live_errors.empty());
}

TEST_F(JobRunnerTest, WhatEachProgramUsedGoesIntoTheMetadata) {
  env_.usage_interval = std::chrono::milliseconds(5);
  engine_.stats.memory_bytes = 100LL << 20;
  engine_.stats.memory_peak_bytes = 300LL << 20;
  engine_.stats.cpu_seconds = 2.5;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: work\n"}});
  test_env_.UseManualClock();
  engine_.programs["program"] = [this](const ContainerSpec&, const OutputFn&,
                                       const std::atomic<bool>&) {
    // The sampler looks while it runs (waiters: the loop and the sampler).
    for (int i = 0; i < 2; ++i) {
      test_env_.Advance(std::chrono::milliseconds(100));
      EXPECT_TRUE(test_env_.AwaitSleepers(2));
    }
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(r.program.peak_memory_bytes, 300LL << 20);
  EXPECT_EQ(r.program.cpu_seconds, 2.5);
  std::string meta = ReadFile(Unpacked(a.prediction_result) / "metadata");
  EXPECT_THAT(meta, HasSubstr("exitCode: 0"));  // the Python worker's keys stay
  EXPECT_THAT(meta, HasSubstr("peakMemoryBytes: 314572800"));
  EXPECT_THAT(meta, HasSubstr("cpuSeconds: 2.5"));
  EXPECT_THAT(meta, ::testing::Not(HasSubstr("ingestionPeakMemoryBytes")));  // no ingestion ran
}

// Rootless on cgroups v1 the engine's stats are the host's (12 GB of "peak
// memory" for a one-second script): none is taken, logged or written.
TEST_F(JobRunnerTest, WhereTheEnginesStatsAreTheHostsNoUsageIsReported) {
  env_.usage_figures = false;
  env_.usage_interval = std::chrono::milliseconds(5);
  engine_.stats.memory_bytes = 12LL << 30;
  engine_.stats.memory_peak_bytes = 12LL << 30;
  engine_.stats.cpu_seconds = 0;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: work\n"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // 10 samples' time
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_FALSE(r.program.peak_memory_bytes.has_value());
  EXPECT_FALSE(r.program.cpu_seconds.has_value());
  std::string meta = ReadFile(Unpacked(a.prediction_result) / "metadata");
  EXPECT_THAT(meta, HasSubstr("exitCode: 0"));
  EXPECT_THAT(meta, ::testing::Not(HasSubstr("peakMemoryBytes")));
  EXPECT_THAT(meta, ::testing::Not(HasSubstr("cpuSeconds")));
}

// What the process logs while it lives (at info and above); the default
// logger comes back after.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string Text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// Both programs share the slot's GPUs: one window over their run, on each
// program's log line and once in the metadata.
TEST_F(JobRunnerTest, WithGpusTheSlotsGpuUseGoesToTheLogAndTheMetadata) {
  auto meter = std::make_shared<FakeGpuMeter>();
  meter->usage.peak_memory_bytes = 3ull << 30;
  meter->usage.mean_utilization_percent = 87.34;
  env_.gpu_usage = meter;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: work\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata", "command: ingest\n"}});
  CapturedLog log;
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(meter->begun, 1);
  EXPECT_EQ(meter->finished, 1);
  EXPECT_EQ(r.gpu.peak_memory_bytes, 3ull << 30);
  EXPECT_EQ(r.gpu.mean_utilization_percent, 87.34);
  std::string meta = ReadFile(Unpacked(a.prediction_result) / "metadata");
  EXPECT_THAT(meta, HasSubstr("exitCode: 0"));
  EXPECT_THAT(meta, HasSubstr("gpuPeakMemoryBytes: 3221225472\n"));
  EXPECT_THAT(meta, HasSubstr("gpuMeanUtilization: 87.3\n"));
  const std::string text = log.Text();
  const std::string gpus =
      "; GPUs 2, 3 while the programs ran: peak memory 3072 MiB, utilisation 87% on average";
  EXPECT_THAT(text, HasSubstr("the submission ran"));
  EXPECT_THAT(text, HasSubstr("the ingestion program ran"));
  // Each on the program's own line (no newline between).
  EXPECT_THAT(text, ContainsRegex("the submission ran [0-9.]+ s: [^\n]*" + gpus));
  EXPECT_THAT(text, ContainsRegex("the ingestion program ran [0-9.]+ s: [^\n]*" + gpus));
}

TEST_F(JobRunnerTest, WithGpusButNoSampleTheLogSaysSoAndTheMetadataHasNoGpuKeys) {
  auto meter = std::make_shared<FakeGpuMeter>();  // finishes with no figures
  env_.gpu_usage = meter;
  RunArgs a = Scoring();
  a.program_data = Bundle("score.zip", {{"metadata", "command: score\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"predictions.csv", "1\n"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "scores.json",
              "{\"acc\": 1}");
    return 0;
  };
  CapturedLog log;
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(meter->finished, 1);
  std::string meta = ReadFile(Unpacked(a.scoring_result) / "metadata");
  EXPECT_THAT(meta, HasSubstr("exitCode: 0"));
  EXPECT_THAT(meta, ::testing::Not(HasSubstr("gpu")));
  EXPECT_THAT(log.Text(), HasSubstr("; GPUs 2, 3 while the programs ran: no figures"));
}

TEST_F(JobRunnerTest, WithoutGpusNoGpuKeysAndNoGpuWords) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: work\n"}});
  CapturedLog log;
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_FALSE(r.gpu.peak_memory_bytes);
  EXPECT_FALSE(r.gpu.mean_utilization_percent);
  std::string meta = ReadFile(Unpacked(a.prediction_result) / "metadata");
  EXPECT_THAT(meta, HasSubstr("exitCode: 0"));
  EXPECT_THAT(meta, ::testing::Not(HasSubstr("gpu")));
  const std::string text = log.Text();
  EXPECT_THAT(text, HasSubstr("the submission ran"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("GPU")));
}

// Detailed results reach the site soon after each change, at most once per
// min_gap, never twice unchanged, and always in their final version.
TEST_F(JobRunnerTest, DetailedResultsAreSentOnChangeRateLimitedAndFinal) {
  env_.detailed_results_interval = std::chrono::milliseconds(5);
  env_.detailed_results_min_gap = std::chrono::milliseconds(150);
  RunArgs a = Scoring();
  a.detailed_results_url = "mem://detailed.html";
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: score\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  // On the job's clock, moved by hand; after each step every waiter (the
  // loop, the usage sampler, the watcher) has had its look.
  test_env_.UseManualClock();
  engine_.programs["program"] = [this](const ContainerSpec& spec, const OutputFn&,
                                       const std::atomic<bool>&) {
    fs::path out = FakeEngine::HostPathOf(spec, "/app/output");
    auto step = [this](std::chrono::milliseconds d) {
      test_env_.Advance(d);
      EXPECT_TRUE(test_env_.AwaitSleepers(3));
    };
    for (int i = 0; i < 30; ++i) {  // a rewrite every 10 ms for 300 ms
      // The last rewrite must differ in its mtime from what went before,
      // which the file system records in ticks of a few milliseconds.
      if (i == 29) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::ofstream(out / "detailed_results.html") << "<p>" << i << "</p>";
      step(std::chrono::milliseconds(10));
    }
    step(std::chrono::milliseconds(300));  // then unchanged
    std::ofstream(out / "scores.json") << R"({"accuracy": 1})";
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(storage_->Read("mem://detailed.html"), "<p>29</p>");
  int uploads = reporter_.detailed_updates;
  EXPECT_GE(uploads, 2);  // while it ran, not only at the end
  EXPECT_LE(uploads, 5);  // 300 ms of changes at one upload per 150 ms, plus the last
}

}  // namespace
}  // namespace cw
