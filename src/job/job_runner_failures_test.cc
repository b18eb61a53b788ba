#include "job/job_runner.h"

#include <algorithm>
#include <cerrno>
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

// How each failure reaches the participant: exit codes, limits, broken bundles, exceptions, and the logs that go up whatever happened.
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

TEST_F(JobRunnerTest, LogsAreUploadedAsTheSiteSignsThemAndBeforeTheTimeLimitText) {
  RunArgs a = Prediction();
  a.execution_time_limit = 1;
  a.program_data = Bundle("s.zip", {{"metadata.yaml", "command: sleep 100\n"}});
  struct OrderReporter : RecordingReporter {
    FakeStorage* storage;
    bool logs_before_error = false;
    Status ReportError(ErrorType type, const std::string& m, bool s) override {
      logs_before_error = storage->WasPut("mem://p_stderr");
      return RecordingReporter::ReportError(type, m, s);
    }
  } order;
  order.storage = storage_.get();
  test_env_.UseManualClock();  // the program "runs" 2 s without a real wait
  engine_.programs["program"] = [this](const ContainerSpec&, const OutputFn&,
                                       const std::atomic<bool>& killed) {
    test_env_.Advance(std::chrono::seconds(2));
    while (!killed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 137;
  };
  JobRunner runner(env_, *storage_, *cache_, engine_);
  JobResult r = runner.Run(a, order, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(order.logs_before_error);
  for (const auto& [url, type] : storage_->puts) {
    if (url.find("_std") != std::string::npos) {
      EXPECT_EQ(type, "application/zip") << url;
    }
  }
}

TEST_F(JobRunnerTest, TimeLimitKillsBothProgramsAndFailsTheJob) {
  RunArgs a = Prediction();
  a.execution_time_limit = 1;
  a.program_data = Bundle("s.zip", {{"metadata.yaml", "command: sleep 100\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata.yaml", "command: sleep 100\n"}});
  // Both programs start and write; then 2 s pass on the job's clock, at once.
  test_env_.UseManualClock();
  std::atomic<int> started{0};
  auto hang = [this, &started](const ContainerSpec&, const OutputFn& out,
                               const std::atomic<bool>& killed) {
    out(StreamKind::kStdout, "working\n");
    if (++started == 2) test_env_.Advance(std::chrono::seconds(2));
    while (!killed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 137;
  };
  engine_.programs["program"] = hang;
  engine_.programs["ingestion"] = hang;
  JobResult r = Run(a);
  EXPECT_EQ(r.outcome, JobResult::Outcome::kFailed);
  EXPECT_EQ(r.failure.code(), Code::kTimeout);
  EXPECT_EQ(r.failure.message(), "Execution Time Limit exceeded. Limit was 1 seconds");
  // The Python worker's texts: the error PATCH, the live error, and its
  // SubmissionException's shape for the status.
  ASSERT_EQ(reporter_.errors.size(), 1u);
  EXPECT_EQ(reporter_.errors[0].first, ErrorType::kExecutionTimeLimitExceeded);
  EXPECT_EQ(reporter_.errors[0].second, "Execution Time Limit exceeded. Limit was 1 seconds");
  EXPECT_THAT(reporter_.live_errors, ElementsAre("Execution Time Limit exceeded. Limit was 1 seconds"));
  EXPECT_EQ(reporter_.StatusSequence().back(), JobStatus::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: Execution Time Limit exceeded. Limit was 1 seconds. See logs for "
            "more details.");
  EXPECT_EQ(engine_.killed_ids.size(), 2u);
  EXPECT_EQ(engine_.live_containers(), 0u);
  // The logs up to the kill still reach storage, before the error text that
  // the site appends to them.
  EXPECT_EQ(storage_->Read("mem://p_stdout"), "working\n");
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
}

// Up to the limit on the job's clock the programs run on; the limit counts
// from their start, not from the job's.
TEST_F(JobRunnerTest, ProgramsRunOnUntilTheTimeLimitIsReached) {
  RunArgs a = Prediction();
  a.execution_time_limit = 60;
  a.program_data = Bundle("s.zip", {{"metadata.yaml", "command: work\n"}});
  test_env_.UseManualClock();
  test_env_.Advance(std::chrono::hours(1));  // before the programs: not counted
  engine_.programs["program"] = [this](const ContainerSpec&, const OutputFn&,
                                       const std::atomic<bool>& killed) {
    test_env_.Advance(std::chrono::seconds(59));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the loop looks again
    return killed ? 137 : 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_TRUE(engine_.killed_ids.empty());
  EXPECT_TRUE(reporter_.errors.empty());
}

TEST_F(JobRunnerTest, NonZeroExitOfTheScoringProgramFails) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: exit 3\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) { return 3; };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.message(), "The scoring program exited with code 3");
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: The scoring program exited with code 3. See logs for more details.");
  EXPECT_TRUE(reporter_.scores.is_null());
  EXPECT_FALSE(storage_->WasPut(a.scoring_result));
}

// The Python worker fails a scoring step whose scoring program has no exit
// code (`program_rc is None`): here the engine lost the container.
TEST_F(JobRunnerTest, AScoringProgramWithoutAnExitCodeFailsTheJob) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: score\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn& out,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "scores.json",
              "{\"accuracy\": 1}");
    out(StreamKind::kStderr, "scored\n");
    return 0;
  };
  engine_.wait_status = NotFound("No such container: c0");
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.message(),
            "The scoring program did not report an exit code: No such container: c0");
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: The scoring program did not report an exit code: No such "
            "container: c0. See logs for more details.");
  // Scores it may have written are not taken; what it said still goes up.
  EXPECT_TRUE(reporter_.scores.is_null());
  EXPECT_FALSE(storage_->WasPut(a.scoring_result));
  EXPECT_EQ(storage_->Read("mem://s_stderr"), "scored\n");
}

// Nor is a scoring program that cannot run (no command, no metadata, none at
// all) a scoring: the Python worker fails those for want of an exit code too.
TEST_F(JobRunnerTest, AScoringJobWhoseScoringProgramCannotRunFails) {
  RunArgs a = Scoring();
  a.prediction_result = Bundle("prediction.zip", {{"scores.json", "{\"accuracy\": 1}"}});
  a.program_data = Bundle("nocommand.zip", {{"metadata.yaml", "description: none\n"}});
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.message(), "The scoring program's metadata.yaml has no 'command'");

  a.program_data = Bundle("nometa.zip", {{"scores.json", "{\"accuracy\": 1}"}});
  r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.message(), "The scoring program has no metadata.yaml (or metadata) file");

  a.program_data = "";
  r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.message(), "This scoring job has no scoring program");
  EXPECT_TRUE(engine_.created.empty());
  EXPECT_TRUE(reporter_.scores.is_null());
  EXPECT_FALSE(storage_->WasPut(a.scoring_result));
}

TEST_F(JobRunnerTest, MissingScoresFailWithAClearReason) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: true\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("Could not find scores file"));
  EXPECT_FALSE(storage_->WasPut(a.scoring_result));
}

TEST_F(JobRunnerTest, IngestionWithoutCommandOrMetadataFails) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"model.py", ""}});
  a.ingestion_program = Bundle("i.zip", {{"metadata.yaml", "description: none\n"}});
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("has no 'command'"));

  a.ingestion_program = Bundle("i2.zip", {{"ingest.py", ""}});
  r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("ingestion program has no metadata.yaml"));
  EXPECT_TRUE(engine_.created.empty());
}

TEST_F(JobRunnerTest, ProgramWithMetadataButNoCommandDoesNotRun) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "description: consumed by ingestion\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_TRUE(engine_.created.empty());
}

TEST_F(JobRunnerTest, BrokenZipIsReportedToTheParticipant) {
  RunArgs a = Prediction();
  WriteFile(storage_->PathOf("mem://broken.zip"), "this is not a zip at all");
  a.program_data = "mem://broken.zip";
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.code(), Code::kInvalidInput);
  EXPECT_THAT(r.failure.message(), HasSubstr("The submission could not be unpacked"));
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: " + r.failure.message() + ". See logs for more details.");
}

TEST_F(JobRunnerTest, ReservedMetadataFileInOutputFails) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "metadata", "mine");
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("reserved"));
}

TEST_F(JobRunnerTest, EscapingZipEntryIsRefused) {
  // Zip a file with a long plain name, then patch the name (in the local and
  // central headers) into one of the same length that climbs out.
  const std::string evil = "../../../../../../../../../../../../../../../../../tmp/cwpwn";
  const std::string name(evil.size(), 'a');
  fs::path src = tmp_ / "evil";
  WriteFile(src / name, "pwned");
  ASSERT_TRUE(CreateZip(src, storage_->PathOf("mem://evil.zip")).ok());
  std::string bytes = ReadFile(storage_->PathOf("mem://evil.zip"));
  int patched = 0;
  for (size_t pos = bytes.find(name); pos != std::string::npos; pos = bytes.find(name, pos)) {
    bytes.replace(pos, name.size(), evil);
    ++patched;
  }
  ASSERT_EQ(patched, 2);
  std::ofstream(storage_->PathOf("mem://evil.zip"), std::ios::binary) << bytes;
  RunArgs a = Prediction();
  a.program_data = "mem://evil.zip";
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.code(), Code::kInvalidInput);
  EXPECT_THAT(r.failure.message(), HasSubstr("outside"));
  EXPECT_FALSE(fs::exists("/tmp/cwpwn"));
}

TEST_F(JobRunnerTest, StartFailureIsTheParticipantsReason) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  engine_.start_status = InvalidInput("exec: \"sh\": executable file not found in $PATH");
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("The submission could not run"));
  EXPECT_THAT(r.failure.message(), HasSubstr("executable file not found"));
  EXPECT_EQ(engine_.live_containers(), 0u);
}

// As on Codabench's own worker, a prediction step goes on to Scoring whatever
// its programs' exit codes: a results-only submission to a CodaLab 1.5
// competition makes the ingestion program exit 1 and is then scored.
TEST_F(JobRunnerTest, PredictionExitCodesDoNotFailTheStep) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"predictions.txt", "1\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata", "command: python ingestion.py\n"}});
  engine_.programs["ingestion"] = [](const ContainerSpec&, const OutputFn&,
                                     const std::atomic<bool>&) { return 1; };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kScoring);
  ASSERT_EQ(reporter_.live_errors.size(), 1u);
  EXPECT_THAT(reporter_.live_errors[0], HasSubstr("ingestion program exited with code 1"));
  fs::path out = Unpacked(a.prediction_result);
  EXPECT_EQ(ReadFile(out / "predictions.txt"), "1\n");
  EXPECT_THAT(ReadFile(out / "metadata"), HasSubstr("ingestionExitCode: 1"));
}

TEST_F(JobRunnerTest, ScoringFailureNamesTheEarlierExitCodes) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: exit 2\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"metadata", "exitCode: ~\ningestionExitCode: 1\n"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) { return 2; };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("scoring program exited with code 2"));
  EXPECT_THAT(r.failure.message(),
              HasSubstr("the ingestion program exited with code 1 in the prediction step"));
}

TEST_F(JobRunnerTest, MissingScoresAfterAFailedPredictionSaySo) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: true\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"metadata", "exitCode: 1\n"}});
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("Could not find scores file"));
  EXPECT_THAT(r.failure.message(), HasSubstr("the submission exited with code 1 in the prediction step"));
}

TEST_F(JobRunnerTest, OutOfMemoryFailsWithTheLimit) {
  env_.container.memory_bytes = 256LL << 20;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: python eat.py\n"}});
  engine_.oom_kinds = {"program"};
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) { return 137; };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("The submission ran out of memory (limit 256 MiB)"));
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
}

TEST_F(JobRunnerTest, AScoringProgramKilledByASignalSaysWhichSignal) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: ./crash\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) { return 139; };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("was killed by SIGSEGV (exit code 139"));
}

// One job's exception ends that job with a reason, never the worker.
TEST_F(JobRunnerTest, AnExceptionInAProgramThreadFailsTheJobOnly) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) -> int {
    throw std::bad_alloc();
  };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("internal error"));
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(engine_.live_containers(), 0u);
}

class ThrowingStorage : public FakeStorage {
 public:
  using FakeStorage::FakeStorage;
  Status Fetch(const std::string&, const std::filesystem::path&,
               const TransferProgressFn& = {}) override {
    throw std::runtime_error("boom");
  }
};

TEST_F(JobRunnerTest, AnExceptionInThePipelineFailsTheJobWithAReason) {
  ThrowingStorage storage(tmp_ / "store");
  RunArgs a = Prediction();
  a.program_data = "mem://s.zip";
  JobRunner runner(env_, storage, *cache_, engine_);
  JobResult r = runner.Run(a, reporter_, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.code(), Code::kInternal);
  EXPECT_THAT(r.failure.message(), HasSubstr("internal error while running this job: boom"));
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  // A clear reason, never a stack trace (the Python worker sends its traceback).
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: The worker hit an internal error while running this job: boom. "
            "See logs for more details.");
}

class BadMountEngine : public FakeEngine {
 public:
  Result<std::string> Create(const ContainerSpec& spec) override {
    return InvalidInput("invalid mount config for type \"bind\": bind source path does not exist: " +
                        spec.mounts.at(0).host_path + " (HTTP 400)");
  }
};

TEST_F(JobRunnerTest, AnUnseenJobFolderNamesHostDirectoryAndTheFix) {
  BadMountEngine engine;
  engine.images.insert(kImage);
  env_.host_dir = "/srv/codabench";
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  JobRunner runner(env_, *storage_, *cache_, engine);
  JobResult r = runner.Run(a, reporter_, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("HOST_DIRECTORY=/srv/codabench"));
  EXPECT_THAT(r.failure.message(), HasSubstr("WORKER_BASE_DIRECTORY"));
  EXPECT_THAT(r.failure.message(), HasSubstr("/srv/codabench/jobs/job-7-prediction-"));
}

// Every failure after the programs ran still uploads what they wrote (the
// Python worker now pushes the logs it has "even in case of crash").
class FailingPutStorage : public FakeStorage {
 public:
  using FakeStorage::FakeStorage;
  std::string failing_url;
  Status Put(const std::string& url, const std::filesystem::path& src,
             const std::string& content_type) override {
    if (url == failing_url) return Unavailable("storage said 503");
    return FakeStorage::Put(url, src, content_type);
  }
};

TEST_F(JobRunnerTest, LogsGoUpWhenTheOutputUploadFails) {
  FailingPutStorage storage(tmp_ / "store");
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: predict\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata", "command: ingest\n"}});
  storage.failing_url = a.prediction_result;
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn& out,
                                   const std::atomic<bool>&) {
    out(StreamKind::kStdout, "predicted\n");
    return 0;
  };
  engine_.programs["ingestion"] = [](const ContainerSpec&, const OutputFn& out,
                                     const std::atomic<bool>&) {
    out(StreamKind::kStderr, "ingested\n");
    return 0;
  };
  JobRunner runner(env_, storage, *cache_, engine_);
  JobResult r = runner.Run(a, reporter_, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("Could not upload the output: storage said 503"));
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(storage.Read("mem://p_stdout"), "predicted\n");
  EXPECT_EQ(storage.Read("mem://pi_stderr"), "ingested\n");
  for (const char* url : {"mem://p_stderr", "mem://pi_stdout"}) {
    EXPECT_TRUE(storage.WasPut(url)) << url;
  }
}

TEST_F(JobRunnerTest, LogsGoUpWhenTheScoresCannotBeRead) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: score\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn& out,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "scores.json", "{not json");
    out(StreamKind::kStderr, "wrote scores\n");
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(reporter_.statuses.back().details, HasSubstr("Submission failed: "));
  EXPECT_EQ(storage_->Read("mem://s_stderr"), "wrote scores\n");
  EXPECT_TRUE(storage_->WasPut("mem://s_stdout"));
  EXPECT_FALSE(storage_->WasPut(a.scoring_result));
}

TEST_F(JobRunnerTest, LogsGoUpAfterAnExceptionOnceTheProgramsRan) {
  // The live note about the ingestion's exit code is the last thing the
  // programs' step does; a reporter that throws there stands for any bug.
  struct ThrowingLiveReporter : RecordingReporter {
    void LiveError(const std::string&) override { throw std::runtime_error("boom"); }
  } reporter;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: predict\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata", "command: ingest\n"}});
  engine_.programs["ingestion"] = [](const ContainerSpec&, const OutputFn& out,
                                     const std::atomic<bool>&) {
    out(StreamKind::kStderr, "Traceback: ingestion failed\n");
    return 1;
  };
  JobRunner runner(env_, *storage_, *cache_, engine_);
  JobResult r = runner.Run(a, reporter, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.code(), Code::kInternal);
  EXPECT_EQ(r.failure.message(), "The worker hit an internal error while running this job: boom");
  EXPECT_EQ(reporter.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(storage_->Read("mem://pi_stderr"), "Traceback: ingestion failed\n");
  for (const char* url : {"mem://p_stdout", "mem://p_stderr", "mem://pi_stdout"}) {
    EXPECT_TRUE(storage_->WasPut(url)) << url;
  }
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
  EXPECT_EQ(engine_.live_containers(), 0u);
}

// A full disk while the submission unpacks: Failed, in words a participant
// can read (no host paths), and no job folder left.
TEST_F(JobRunnerTest, AFullDiskWhileUnpackingFailsTheJobAndLeavesNothing) {
  test_env_.FailWritesTo("*/jobs/job-*/program/*", ENOSPC);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: run\n"}, {"run.py", "print(1)\n"}});
  JobResult r = Run(a);
  EXPECT_EQ(r.outcome, JobResult::Outcome::kFailed);
  EXPECT_EQ(r.failure.code(), Code::kIo);
  EXPECT_EQ(reporter_.StatusSequence().back(), JobStatus::kFailed);
  const std::string& details = reporter_.statuses.back().details;
  EXPECT_THAT(details, ContainsRegex("^Submission failed: The submission could not be unpacked: "
                                     "cannot write '(metadata|run.py)': no space left on the "
                                     "worker's disk. See logs for more details.$"));
  EXPECT_EQ(details.find(tmp_.string()), std::string::npos) << details;
  EXPECT_TRUE(engine_.created.empty());
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
  EXPECT_TRUE(NoJobFolderLeft());
}

TEST_F(JobRunnerTest, AFullDiskWhileZippingTheOutputFailsTheJobAndLeavesNothing) {
  test_env_.FailWritesTo("*/output.zip.part-*", ENOSPC);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: run\n"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn& out,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "predictions.csv", "1\n");
    out(StreamKind::kStdout, "done\n");
    return 0;
  };
  JobResult r = Run(a);
  EXPECT_EQ(r.outcome, JobResult::Outcome::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: cannot write output.zip: no space left on the worker's disk. "
            "See logs for more details.");
  EXPECT_EQ(storage_->Read("mem://p_stdout"), "done\n");  // the logs still went up
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
  EXPECT_THAT(reporter_.StatusSequence(), ::testing::Not(::testing::Contains(JobStatus::kScoring)));
  EXPECT_TRUE(NoJobFolderLeft());
}

TEST_F(JobRunnerTest, AFailingWriteOfTheMetadataFailsTheJobAndLeavesNothing) {
  test_env_.FailWritesTo("*/output/metadata", EIO);
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip", {{"metadata", "command: score\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"p", "1"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "scores.json", R"({"acc": 1})");
    return 0;
  };
  JobResult r = Run(a);
  EXPECT_EQ(r.outcome, JobResult::Outcome::kFailed);
  EXPECT_EQ(r.failure.code(), Code::kIo);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: cannot write the output's metadata file: Input/output error. "
            "See logs for more details.");
  EXPECT_TRUE(reporter_.scores.is_null());
  EXPECT_FALSE(storage_->WasPut(a.scoring_result));
  EXPECT_EQ(test_env_.injected(), 1);
  EXPECT_TRUE(NoJobFolderLeft());
}

}  // namespace
}  // namespace cw
