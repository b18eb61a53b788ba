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
#include "job/test_fakes.h"
#include "storage/hash.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeEngine;
using testing::FakeGpuMeter;
using testing::FakeStorage;
using testing::RecordingReporter;

constexpr const char* kImage = "codalab/codalab-legacy:py37";

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-job-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    storage_ = std::make_unique<FakeStorage>(tmp_ / "store");
    cache_ = std::make_unique<BundleCache>(tmp_ / "base/cache", 1ull << 30);
    engine_.images.insert(kImage);
    env_.base_dir = tmp_ / "base";
    env_.host_dir = tmp_ / "base";
    env_.hostname = "box";
    env_.detailed_results_interval = std::chrono::milliseconds(20);
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // Zips `files` (relative path -> content) and stores it as mem://name.
  std::string Bundle(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::path src = tmp_ / "src" / name;
    for (const auto& [rel, text] : files) WriteFile(src / rel, text);
    fs::create_directories(src);
    EXPECT_TRUE(CreateZip(src, storage_->PathOf("mem://" + name)).ok());
    return "mem://" + name;
  }

  RunArgs Prediction() {
    RunArgs a;
    a.id = 7;
    a.user_pk = 3;
    a.submissions_api_url = "http://site/api";
    a.secret = "s3cret";
    a.docker_image = kImage;
    a.execution_time_limit = 30;
    a.is_scoring = false;
    a.prediction_result = "mem://prediction.zip?X-Amz-Signature=abc";
    a.stdout_url = "mem://p_stdout";
    a.stderr_url = "mem://p_stderr";
    a.ingestion_stdout_url = "mem://pi_stdout";
    a.ingestion_stderr_url = "mem://pi_stderr";
    return a;
  }

  RunArgs Scoring() {
    RunArgs a = Prediction();
    a.is_scoring = true;
    a.scoring_result = "mem://scoring.zip";
    a.stdout_url = "mem://s_stdout";
    a.stderr_url = "mem://s_stderr";
    a.ingestion_stdout_url = "";
    a.ingestion_stderr_url = "";
    return a;
  }

  JobResult Run(const RunArgs& args) {
    JobRunner runner(env_, *storage_, *cache_, engine_);
    return runner.Run(args, reporter_, cancel_);
  }

  // The files of a zip stored at `url`, unpacked.
  fs::path Unpacked(const std::string& url) {
    fs::path dest = tmp_ / "unpacked" / RandomHex(4);
    EXPECT_TRUE(ExtractZip(storage_->PathOf(url), dest).ok());
    return dest;
  }

  fs::path tmp_;
  std::unique_ptr<FakeStorage> storage_;
  std::unique_ptr<BundleCache> cache_;
  FakeEngine engine_;
  RecordingReporter reporter_;
  CancelToken cancel_;
  JobEnvironment env_;
};

TEST_F(JobRunnerTest, PredictionWithIngestionRunsBothAndUploadsEverything) {
  RunArgs a = Prediction();
  a.program_data = Bundle("submission.zip", {{"model.py", "class Model: pass\n"}});
  a.ingestion_program = Bundle(
      "ingestion.zip",
      {{"metadata.yaml", "command: python $ingestion_program/ingest.py $input $output "
                         "$submission_program\n"}});
  a.input_data = Bundle("input.zip", {{"train.csv", "1,2\n"}});
  engine_.programs["ingestion"] = [](const ContainerSpec& spec, const OutputFn& out,
                                     const std::atomic<bool>&) {
    // The ingestion sees the submission and the input data where the contract puts them.
    std::string ingested = FakeEngine::HostPathOf(spec, "/app/ingested_program");
    std::string input = FakeEngine::HostPathOf(spec, "/app/input_data");
    if (!fs::exists(fs::path(ingested) / "model.py")) return 2;
    if (!fs::exists(fs::path(input) / "train.csv")) return 3;
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "predictions.csv", "1\n");
    out(StreamKind::kStdout, "training\n");
    out(StreamKind::kStderr, "a warning\n");
    return 0;
  };

  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();

  EXPECT_THAT(reporter_.StatusSequence(),
              ElementsAre(JobStatus::kPreparing, JobStatus::kRunning, JobStatus::kScoring));
  EXPECT_EQ(reporter_.statuses[1].details, "ingestion_hostname-box");
  auto md5 = Md5FileHex(storage_->PathOf(a.program_data));
  ASSERT_TRUE(md5.ok());
  EXPECT_EQ(reporter_.md5, *md5);

  // Only the ingestion ran: the submission has no metadata (code for ingestion).
  ASSERT_EQ(engine_.created.size(), 1u);
  const ContainerSpec& spec = engine_.created[0];
  EXPECT_EQ(spec.image, kImage);
  EXPECT_THAT(spec.cmd, ElementsAre("sh", "-c",
                                    "python /app/program/ingest.py /app/input_data /app/output "
                                    "/app/ingested_program"));
  EXPECT_EQ(spec.working_dir, "/app/program");
  EXPECT_EQ(spec.log_driver, "none");
  EXPECT_THAT(spec.env, ::testing::Contains("PYTHONUNBUFFERED=1"));
  EXPECT_THAT(spec.security_opt, ElementsAre("no-new-privileges"));
  EXPECT_EQ(spec.cap_drop.size(), 14u);
  EXPECT_EQ(spec.labels.at(kLabelSubmission), "7");
  EXPECT_EQ(spec.labels.at(kLabelKind), "ingestion");
  EXPECT_EQ(spec.labels.at(kLabelStage), "prediction");
  EXPECT_EQ(FakeEngine::HostPathOf(spec, "/app/data"), (env_.host_dir / "data").string());
  EXPECT_TRUE(FakeEngine::HostPathOf(spec, "/app/shared").empty());  // scoring only
  EXPECT_TRUE(FakeEngine::HostPathOf(spec, "/app/input").empty());

  // Output zip: the predictions, the submission's files (no metadata means
  // they are copied) and the worker's metadata file.
  fs::path out = Unpacked(a.prediction_result);
  EXPECT_TRUE(fs::exists(out / "predictions.csv"));
  EXPECT_TRUE(fs::exists(out / "model.py"));
  EXPECT_THAT(ReadFile(out / "metadata"), HasSubstr("ingestionExitCode: 0"));

  EXPECT_EQ(storage_->Read("mem://pi_stdout"), "training\n");
  EXPECT_EQ(storage_->Read("mem://pi_stderr"), "a warning\n");
  EXPECT_EQ((reporter_.logs[{ProgramKind::kIngestion, LogStream::kStdout}]), "training\n");
  EXPECT_EQ(engine_.live_containers(), 0u);
  EXPECT_FALSE(fs::exists(tmp_ / "base/jobs") && !fs::is_empty(tmp_ / "base/jobs"));
}

TEST_F(JobRunnerTest, OutputIsUploadedBeforeTheScoringStatus) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: echo hi > $output/x\n"}});
  struct OrderReporter : RecordingReporter {
    FakeStorage* storage;
    std::string url;
    bool uploaded_before_scoring = false;
    Status UpdateStatus(JobStatus s, const std::string& d) override {
      if (s == JobStatus::kScoring) uploaded_before_scoring = storage->WasPut(url);
      return RecordingReporter::UpdateStatus(s, d);
    }
  } order;
  order.storage = storage_.get();
  order.url = a.prediction_result;
  JobRunner runner(env_, *storage_, *cache_, engine_);
  JobResult r = runner.Run(a, order, cancel_);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_TRUE(order.uploaded_before_scoring);
}

TEST_F(JobRunnerTest, ScoringReadsPredictionsAndReferenceAndReportsScores) {
  RunArgs a = Scoring();
  a.program_data = Bundle("scoring.zip",
                          {{"metadata", "command: python $program/evaluate.py $input $output\n"}});
  a.reference_data = Bundle("ref.zip", {{"truth.csv", "1\n"}});
  a.prediction_result = Bundle("prediction.zip", {{"predictions.csv", "1\n"}});
  a.detailed_results_url = "mem://detailed.html";
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn& out,
                                   const std::atomic<bool>&) {
    fs::path input = FakeEngine::HostPathOf(spec, "/app/input");
    if (!fs::exists(input / "ref/truth.csv") || !fs::exists(input / "res/predictions.csv")) {
      out(StreamKind::kStderr, "missing inputs\n");
      return 1;
    }
    if (FakeEngine::HostPathOf(spec, "/app/shared").empty()) return 4;
    fs::path output = FakeEngine::HostPathOf(spec, "/app/output");
    WriteFile(output / "scores.txt", "accuracy: 0.75\nmae: 2\n");
    WriteFile(output / "detailed_results.html", "<h1>ok</h1>");
    return 0;
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_THAT(reporter_.StatusSequence(), ElementsAre(JobStatus::kRunning, JobStatus::kFinished));
  EXPECT_EQ(reporter_.statuses[0].details, "scoring_hostname-box");
  EXPECT_DOUBLE_EQ(reporter_.scores["accuracy"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(reporter_.scores["mae"].get<double>(), 2.0);
  EXPECT_EQ(storage_->Read("mem://detailed.html"), "<h1>ok</h1>");
  EXPECT_GE(reporter_.detailed_updates.load(), 1);
  fs::path out = Unpacked(a.scoring_result);
  EXPECT_TRUE(fs::exists(out / "scores.txt"));
  EXPECT_THAT(ReadFile(out / "metadata"), HasSubstr("exitCode: 0"));
  EXPECT_TRUE(reporter_.md5.empty());  // md5 is for the submission only
}

TEST_F(JobRunnerTest, ResultsOnlySubmissionIsCopiedToOutputWithoutAContainer) {
  RunArgs a = Prediction();
  a.program_data = Bundle("results.zip", {{"answers.predict", "0 1 1\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_TRUE(engine_.created.empty());
  fs::path out = Unpacked(a.prediction_result);
  EXPECT_EQ(ReadFile(out / "answers.predict"), "0 1 1\n");
  EXPECT_THAT(ReadFile(out / "metadata"), HasSubstr("exitCode: ~"));
}

TEST_F(JobRunnerTest, SubmissionInsideOneTopFolderIsFound) {
  RunArgs a = Prediction();
  a.program_data = Bundle("nested.zip", {{"my_sub/metadata.yaml", "command: python run.py\n"},
                                         {"my_sub/run.py", "print(1)\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  ASSERT_EQ(engine_.created.size(), 1u);
  EXPECT_EQ(engine_.created[0].cmd[2], "python run.py");
}

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
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>& killed) {
    while (!killed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
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
  auto hang = [](const ContainerSpec&, const OutputFn& out, const std::atomic<bool>& killed) {
    out(StreamKind::kStdout, "working\n");
    while (!killed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
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


TEST_F(JobRunnerTest, ImagePullFailureWithoutLocalImageFailsWithTheEngineReason) {
  RunArgs a = Prediction();
  a.docker_image = "nosuch/image:1";
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  engine_.pull_status = NotFound("pull access denied for nosuch/image");
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.message(), "Pull for nosuch/image:1 failed: pull access denied for nosuch/image");
  ASSERT_EQ(reporter_.errors.size(), 1u);
  EXPECT_EQ(reporter_.errors[0].first, ErrorType::kDockerImagePullFail);
  EXPECT_EQ(reporter_.errors[0].second, r.failure.message());
  EXPECT_TRUE(engine_.created.empty());
  // The Python worker's shape: "Docker image pull failed: <why>".
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Docker image pull failed: Pull for nosuch/image:1 failed: pull access denied for "
            "nosuch/image");
}


// Waits up to 5 s for `flag`; whether it came.
bool AwaitFlag(const std::atomic<bool>& flag) {
  for (int i = 0; i < 500 && !flag; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return flag;
}

// As a transfer or the engine's pull call does: it ends once its job gives up
// on it (or after 10 s). True when it was given up on.
bool AwaitAbandoned() {
  for (int i = 0; i < 1000 && !AbandonScope::Abandoned(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return AbandonScope::Abandoned();
}

TEST_F(JobRunnerTest, TheImageIsPulledWhileTheBundlesDownload) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  std::atomic<bool> pulling{false}, fetching{false}, fetch_saw_pull{false}, pull_saw_fetch{false};
  engine_.pull_hook = [&] {
    pulling = true;
    pull_saw_fetch = AwaitFlag(fetching);
  };
  storage_->fetch_hook = [&](const std::string&) {
    fetching = true;
    fetch_saw_pull = AwaitFlag(pulling);
  };
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  // Each saw the other under way: they overlapped, neither waited for the other.
  EXPECT_TRUE(fetch_saw_pull);
  EXPECT_TRUE(pull_saw_fetch);
  EXPECT_EQ(engine_.pulled.size(), 1u);
}

TEST_F(JobRunnerTest, AFailedDownloadStopsThePullAndIsTheReason) {
  RunArgs a = Prediction();
  a.program_data = "mem://missing.zip";
  std::atomic<bool> abandoned{false};
  engine_.pull_hook = [&] {
    abandoned = AwaitAbandoned();
  };
  JobResult r = Run(a);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.failure.message(), HasSubstr("Could not download the submission"));
  EXPECT_TRUE(abandoned);
  EXPECT_TRUE(reporter_.errors.empty());  // no pull failure reported on top
}




TEST_F(JobRunnerTest, PullsAndDownloadsShowTheirProgressOnTheDisplay) {
  std::vector<std::string> lines;
  env_.progress.write = [&lines](const std::string& line) { lines.push_back(line); };
  env_.progress.start_after = std::chrono::milliseconds(0);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  const auto zip_size = std::filesystem::file_size(tmp_ / "store" / "s.zip");
  ASSERT_TRUE(Run(a).ok());
  EXPECT_THAT(lines, ::testing::Contains(::testing::StartsWith(
                         "downloading the submission: done, " + FormatBytes(zip_size) + " in ")));
  EXPECT_THAT(lines, ::testing::Contains(::testing::MatchesRegex(
                         "pulling image " + a.docker_image + ": done, .*1/1 layers")));
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

TEST_F(JobRunnerTest, CancelStopsTheProgramsAndReportsNothingMore) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: sleep 100\n"}});
  engine_.programs["program"] = [this](const ContainerSpec&, const OutputFn&,
                                       const std::atomic<bool>& killed) {
    cancel_.Cancel("revoked by the site");
    while (!killed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return 137;
  };
  JobResult r = Run(a);
  EXPECT_EQ(r.outcome, JobResult::Outcome::kCancelled);
  EXPECT_THAT(r.failure.message(), HasSubstr("revoked"));
  EXPECT_THAT(reporter_.StatusSequence(), ElementsAre(JobStatus::kPreparing, JobStatus::kRunning));
  EXPECT_EQ(engine_.live_containers(), 0u);
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
}

TEST_F(JobRunnerTest, TaskTimeLimitCancelReportsFailed) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: sleep 100\n"}});
  engine_.programs["program"] = [this](const ContainerSpec&, const OutputFn& out,
                                       const std::atomic<bool>& killed) {
    out(StreamKind::kStdout, "epoch 1\n");
    cancel_.Cancel("Execution time limit exceeded.", /*report=*/true);
    while (!killed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return 137;
  };
  JobResult r = Run(a);
  EXPECT_EQ(r.outcome, JobResult::Outcome::kFailed);
  ASSERT_FALSE(reporter_.statuses.empty());
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  // The task's reason alone, as the Python worker sends its soft limit's.
  EXPECT_EQ(reporter_.statuses.back().details, "Execution time limit exceeded.");
  EXPECT_EQ(engine_.live_containers(), 0u);
  // What the program wrote before the limit still goes up.
  EXPECT_EQ(storage_->Read("mem://p_stdout"), "epoch 1\n");
  EXPECT_TRUE(storage_->WasPut("mem://p_stderr"));
  EXPECT_FALSE(storage_->WasPut(a.prediction_result));
}

TEST_F(JobRunnerTest, MountsUseTheEngineHostPathWhenTheWorkerRunsInAContainer) {
  env_.host_dir = "/srv/codabench";
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  ASSERT_EQ(engine_.created.size(), 1u);
  for (const auto& m : engine_.created[0].mounts) {
    EXPECT_EQ(m.host_path.rfind("/srv/codabench/", 0), 0u) << m.host_path;
  }
}

TEST_F(JobRunnerTest, TheSlotsOptionsReachEveryContainer) {
  env_.container.env = {"NVIDIA_VISIBLE_DEVICES=GPU-1"};
  env_.container.device_requests = {{"nvidia", {"GPU-1"}, {{"gpu"}}, 0}};
  env_.container.cpuset_cpus = "4-7";
  env_.container.ipc_mode = "host";
  env_.container.shm_size_bytes = 1LL << 30;
  env_.container.memory_bytes = 2LL << 30;
  env_.container.extra_mounts = {{"/srv/eval", "/eval-program", true}};
  env_.labels["org.codabench.slot"] = "1";
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata", "command: true\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  ASSERT_EQ(engine_.created.size(), 2u);  // ingestion and the submission
  for (const ContainerSpec& spec : engine_.created) {
    EXPECT_NE(std::find(spec.env.begin(), spec.env.end(), "NVIDIA_VISIBLE_DEVICES=GPU-1"),
              spec.env.end());
    ASSERT_EQ(spec.device_requests.size(), 1u);
    EXPECT_EQ(spec.device_requests[0].device_ids, std::vector<std::string>{"GPU-1"});
    EXPECT_EQ(spec.cpuset_cpus, "4-7");
    EXPECT_EQ(spec.ipc_mode, "host");
    EXPECT_EQ(spec.shm_size_bytes, 1LL << 30);
    EXPECT_EQ(spec.memory_bytes, 2LL << 30);
    EXPECT_EQ(spec.labels.at("org.codabench.slot"), "1");
    bool mounted = false;
    for (const Mount& m : spec.mounts) {
      mounted = mounted || (m.host_path == "/srv/eval" && m.container_path == "/eval-program" &&
                            m.read_only);
    }
    EXPECT_TRUE(mounted);
  }
}


TEST_F(JobRunnerTest, ScoringReadsThePredictionOutputThisWorkerUploadedWithoutDownloading) {
  RunArgs p = Prediction();
  p.program_data = Bundle("s.zip", {{"metadata", "command: python predict.py\n"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "predictions.csv", "42\n");
    return 0;
  };
  ASSERT_TRUE(Run(p).ok());

  RunArgs s = Scoring();
  s.prediction_result = "mem://prediction.zip?X-Amz-Signature=get";  // signed for reading
  s.program_data = Bundle("scoring_program.zip", {{"metadata", "command: python score.py\n"}});
  std::string seen;
  engine_.programs["program"] = [&seen](const ContainerSpec& spec, const OutputFn&,
                                        const std::atomic<bool>&) {
    seen = ReadFile(fs::path(FakeEngine::HostPathOf(spec, "/app/input")) / "res/predictions.csv");
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "scores.txt", "a: 1\n");
    return 0;
  };
  JobResult r = Run(s);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  EXPECT_EQ(seen, "42\n");
  for (const auto& url : storage_->fetched) EXPECT_EQ(url.find("prediction.zip"), std::string::npos) << url;
  // Claimed once: a second scoring run (a redelivery) downloads it.
  ASSERT_TRUE(Run(s).ok());
  int fetches = 0;
  for (const auto& url : storage_->fetched) fetches += url.find("prediction.zip") != std::string::npos;
  EXPECT_EQ(fetches, 1);
  EXPECT_EQ(seen, "42\n");
}

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
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
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
  engine_.programs["program"] = [secret](const ContainerSpec& spec, const OutputFn&,
                                         const std::atomic<bool>&) {
    fs::path out = FakeEngine::HostPathOf(spec, "/app/output");
    fs::create_symlink(secret, out / "detailed_results.html");
    std::ofstream(out / "scores.json") << R"({"accuracy": 1})";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
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

TEST_F(JobRunnerTest, DeferredCleanupWaitsForTheCaller) {
  env_.defer_cleanup = true;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  ASSERT_TRUE(r.cleanup);
  EXPECT_EQ(engine_.live_containers(), 1u);  // the final status is out, removal waits
  EXPECT_FALSE(fs::is_empty(env_.base_dir / "jobs"));
  r.cleanup();
  EXPECT_EQ(engine_.live_containers(), 0u);
  EXPECT_TRUE(fs::is_empty(env_.base_dir / "jobs"));
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

TEST_F(JobRunnerTest, JobsGoUnderTheNodesFolderWhichARestartSweeps) {
  env_.jobs_subfolder = "compute-worker@a";
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: true\n"}});
  fs::path seen;
  engine_.programs["program"] = [&](const ContainerSpec& spec, const OutputFn&,
                                    const std::atomic<bool>&) {
    seen = FakeEngine::HostPathOf(spec, "/app/output");
    return 0;
  };
  ASSERT_TRUE(Run(a).ok());
  EXPECT_EQ(seen.parent_path().parent_path(), env_.base_dir / "jobs" / "compute-worker@a");

  // What a killed run left: swept for this node only.
  WriteFile(env_.base_dir / "jobs/compute-worker@a/job-1-prediction-x/output/big", "data");
  WriteFile(env_.base_dir / "jobs/compute-worker@b/job-2-prediction-y/output/big", "data");
  EXPECT_EQ(RemoveLeftoverJobFolders(env_), 1);
  EXPECT_TRUE(fs::is_empty(env_.base_dir / "jobs/compute-worker@a"));
  EXPECT_TRUE(fs::exists(env_.base_dir / "jobs/compute-worker@b/job-2-prediction-y"));
}

TEST_F(JobRunnerTest, WhatEachProgramUsedGoesIntoTheMetadata) {
  env_.usage_interval = std::chrono::milliseconds(5);
  engine_.stats.memory_bytes = 100LL << 20;
  engine_.stats.memory_peak_bytes = 300LL << 20;
  engine_.stats.cpu_seconds = 2.5;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: work\n"}});
  engine_.programs["program"] = [](const ContainerSpec&, const OutputFn&,
                                   const std::atomic<bool>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
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
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>&) {
    fs::path out = FakeEngine::HostPathOf(spec, "/app/output");
    for (int i = 0; i < 30; ++i) {  // a rewrite every 10 ms for 300 ms
      std::ofstream(out / "detailed_results.html") << "<p>" << i << "</p>";
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // then unchanged
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

// Containers carry the Python worker's names ("scoring_" is the program in
// both steps), and all our labels.
TEST_F(JobRunnerTest, ContainersAreNamedAsThePythonWorkerNamesThem) {
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: predict\n"}});
  a.ingestion_program = Bundle("i.zip", {{"metadata", "command: ingest\n"}});
  JobResult r = Run(a);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  RunArgs s = Scoring();
  s.program_data = Bundle("scoring.zip", {{"metadata", "command: score\n"}});
  s.prediction_result = Bundle("prediction.zip", {{"scores.json", "{\"a\": 1}"}});
  engine_.programs["program"] = [](const ContainerSpec& spec, const OutputFn&,
                                   const std::atomic<bool>&) {
    WriteFile(fs::path(FakeEngine::HostPathOf(spec, "/app/output")) / "scores.json", "{\"a\": 1}");
    return 0;
  };
  r = Run(s);
  ASSERT_TRUE(r.ok()) << r.failure.ToString();
  std::map<std::string, std::string> names;  // stage/kind -> name
  for (const auto& spec : engine_.created) {
    names[spec.labels.at(kLabelStage) + "/" + spec.labels.at(kLabelKind)] = spec.name;
    EXPECT_EQ(spec.labels.at(kLabelWorker), "codabench-worker");
    EXPECT_EQ(spec.labels.at(kLabelSubmission), "7");
    EXPECT_FALSE(spec.labels.at(kLabelJob).empty());
  }
  EXPECT_EQ(names, (std::map<std::string, std::string>{
                       {"prediction/ingestion", "ingestion_uPK-3_sID-7"},
                       {"prediction/program", "scoring_uPK-3_sID-7"},
                       {"scoring/program", "scoring_uPK-3_sID-7"}}));
  EXPECT_TRUE(engine_.refused_names.empty());
}

// The prediction's container may still be being removed (after the ack) as
// the scoring job of the same submission starts on this host; or the same
// submission runs twice. The name taken, a short suffix makes it unique.
TEST_F(JobRunnerTest, ATakenContainerNameGetsAShortSuffix) {
  env_.defer_cleanup = true;
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: predict\n"}});
  JobResult first = Run(a);
  ASSERT_TRUE(first.ok()) << first.failure.ToString();
  ASSERT_EQ(engine_.live_containers(), 1u);  // its cleanup has not run yet
  JobResult second = Run(a);
  ASSERT_TRUE(second.ok()) << second.failure.ToString();
  ASSERT_EQ(engine_.created.size(), 2u);
  EXPECT_EQ(engine_.created[0].name, "scoring_uPK-3_sID-7");
  EXPECT_THAT(engine_.created[1].name, ContainsRegex("^scoring_uPK-3_sID-7_[0-9a-f]{6}$"));
  EXPECT_THAT(engine_.refused_names, ElementsAre("scoring_uPK-3_sID-7"));
  EXPECT_EQ(engine_.created[1].labels.at(kLabelSubmission), "7");
  first.cleanup();
  second.cleanup();
  EXPECT_EQ(engine_.live_containers(), 0u);
}

// A name that stays taken whatever the suffix (an engine that refuses every
// name) fails the job with the engine's words, after a few tries.
TEST_F(JobRunnerTest, ANameThatStaysTakenFailsAfterAFewTries) {
  struct AllTakenEngine : FakeEngine {
    int creates = 0;
    Result<std::string> Create(const ContainerSpec& spec) override {
      ++creates;
      return AlreadyExists("Conflict. The container name \"/" + spec.name + "\" is already in use");
    }
  } engine;
  engine.images.insert(kImage);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: predict\n"}});
  JobRunner runner(env_, *storage_, *cache_, engine);
  JobResult r = runner.Run(a, reporter_, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(engine.creates, 4);
  EXPECT_EQ(r.failure.code(), Code::kAlreadyExists);
  EXPECT_THAT(r.failure.message(), HasSubstr("The submission's container could not be created"));
  EXPECT_THAT(r.failure.message(), HasSubstr("is already in use"));
}

}  // namespace
}  // namespace cw
