#include "job/job_runner.h"

#include <algorithm>
#include <fstream>
#include <mutex>
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
#include "job/network_holders.h"
#include "job/test_fakes.h"
#include "storage/hash.h"

// A job from run_args to its final status: the flow, the pull beside the downloads, cancels, mounts, names.
namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using job_testing::JobRunnerTest;
using job_testing::kImage;
using job_testing::ReadFile;
using testing::AwaitAbandoned;
using testing::AwaitFlag;
using testing::FakeEngine;
using testing::FakeGpuMeter;
using testing::FakeStorage;
using testing::RecordingReporter;
using testing::WriteFile;

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
  // The pull and the download report from their own threads at once.
  std::mutex mu;
  std::vector<std::string> lines;
  env_.progress.write = [&mu, &lines](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(line);
  };
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

// Under Podman only the holders' routes keep a slot's programs from the
// other slots' (job/network_holders.h): when no holder can be made, the
// program does not run on the slot's network without them; the job fails
// saying why, and nothing of it is left.
TEST_F(JobRunnerTest, WithoutAHolderWhereOnlyItsRoutesKeepSlotsApartTheProgramDoesNotRun) {
  struct NoHolderEngine : FakeEngine {
    Result<std::string> Create(const ContainerSpec& spec) override {
      if (spec.labels.count(kLabelNetworkHolder)) return Unavailable("no space left on device");
      return FakeEngine::Create(spec);
    }
  } engine;
  engine.images.insert(kImage);
  NetworkHolderOptions options;
  options.image = "localhost/codabench-worker/sandbox:test";
  options.network = "codabench-jobs-0";
  options.prohibit = {"10.89.2.0/24"};
  options.spares = 0;
  env_.network_holders = std::make_shared<NetworkHolders>(engine, options);
  RunArgs a = Prediction();
  a.program_data = Bundle("s.zip", {{"metadata", "command: predict\n"}});
  JobRunner runner(env_, *storage_, *cache_, engine);
  JobResult r = runner.Run(a, reporter_, cancel_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure.code(), Code::kUnavailable);
  EXPECT_EQ(reporter_.statuses.back().status, JobStatus::kFailed);
  EXPECT_EQ(reporter_.statuses.back().details,
            "Submission failed: this worker could not make the submission's network, "
            "which keeps it apart from other jobs (no space left on device). See logs for more "
            "details.");
  EXPECT_TRUE(engine.created.empty()) << "no program ran, on any network";
  EXPECT_EQ(engine.live_containers(), 0u);
}

}  // namespace
}  // namespace cw
