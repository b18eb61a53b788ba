// run-local end to end: the real binary, the real Docker engine, real bundles.
// Needs the images made by scripts/make-test-images and
// scripts/build-python-image (scripts/test makes them).
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "engine/docker_engine.h"
#include "job/test_fakes.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using cw::testing::ReadFile;
using cw::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kBusybox = "codabench-worker-test/busybox:latest";
constexpr const char* kPython = "codabench-worker/python:bookworm";

struct WorkerRun {
  int exit_code = -1;
  std::string out, err;
  double seconds = 0;
};

class RunLocalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-runlocal-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
  }
  void TearDown() override {
    // Whatever happened, no container of a local run may be left behind.
    auto left = engine_.ListByLabel("org.codabench.run-local", "1");
    ASSERT_TRUE(left.ok()) << left.status().ToString();
    EXPECT_TRUE(left->empty()) << left->size() << " containers left behind";
    for (const auto& id : *left) (void)engine_.Remove(id, true);
    fs::remove_all(tmp_);
  }

  WorkerRun RunWorker(const std::string& args) {
    WorkerRun r;
    fs::path out = tmp_ / "stdout.txt";
    fs::path err = tmp_ / "stderr.txt";
    std::string cmd = std::string(CW_WORKER_BINARY) + " run-local " + args + " >" + out.string() +
                      " 2>" + err.string();
    auto start = std::chrono::steady_clock::now();
    int status = std::system(cmd.c_str());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  // A block scalar, so a command may hold ": " and quotes.
  static std::string Metadata(const std::string& command) {
    return "command: |-\n  " + command + "\n";
  }

  // A v2 bundle folder with one task whose programs are shell commands.
  fs::path MakeBundle(const std::string& scoring_command, int time_limit = 60,
                      const std::string& ingestion_command = "") {
    fs::path b = tmp_ / "bundle";
    std::string yaml =
        "version: 2\ntitle: shell test\ndocker_image: " + std::string(kBusybox) +
        "\ntasks:\n  - index: 0\n    name: t\n    scoring_program: scoring_program/\n" +
        (ingestion_command.empty() ? "" : "    ingestion_program: ingestion_program/\n") +
        "phases:\n  - index: 0\n    name: Dev\n    execution_time_limit: " +
        std::to_string(time_limit) +
        "\n    tasks: [0]\nleaderboards:\n  - index: 0\n    title: R\n    key: R\n    columns:\n"
        "      - {title: Score, key: score, index: 0, sorting: desc}\n";
    WriteFile(b / "competition.yaml", yaml);
    WriteFile(b / "scoring_program/metadata.yaml", Metadata(scoring_command));
    if (!ingestion_command.empty()) {
      WriteFile(b / "ingestion_program/metadata.yaml", Metadata(ingestion_command));
    }
    return b;
  }

  fs::path MakeSubmission(const std::string& command) {
    fs::path s = tmp_ / "submission";
    WriteFile(s / "metadata.yaml", Metadata(command));
    return s;
  }

  std::string Out() const { return (tmp_ / "out").string(); }

  fs::path tmp_;
  DockerEngine engine_{"unix:///var/run/docker.sock"};
};

TEST_F(RunLocalTest, ExampleCompetitionIsScored) {
  WorkerRun r = RunWorker(std::string(CW_SOURCE_DIR) + "/examples/competition " + CW_SOURCE_DIR +
                    "/examples/submission --image " + kPython + " --out " + Out());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Accuracy"));
  EXPECT_THAT(r.out, HasSubstr("Mean absolute error"));
  EXPECT_THAT(r.out, HasSubstr("ingestion         |"));
  fs::path out = Out();
  EXPECT_TRUE(fs::exists(out / "prediction/output.zip"));
  EXPECT_TRUE(fs::exists(out / "prediction/output/metadata"));
  EXPECT_TRUE(fs::exists(out / "scoring/output/scores.json"));
  EXPECT_TRUE(fs::exists(out / "scoring/detailed_results.html"));
  EXPECT_THAT(ReadFile(out / "prediction/logs/ingestion_stdout.txt"), HasSubstr("predictions"));
  EXPECT_FALSE(fs::exists(out / "work"));  // removed without --keep
}

TEST_F(RunLocalTest, V15ZipBundleWithResultsOnlySubmission) {
  fs::path bundle = tmp_ / "v15.zip";
  std::string make = std::string("bash ") + CW_SOURCE_DIR + "/tests/fixtures/make_v15_bundle.sh " +
                     bundle.string();
  ASSERT_EQ(std::system(make.c_str()), 0);
  WorkerRun r = RunWorker(bundle.string() + " " + CW_SOURCE_DIR + "/tests/fixtures/v15_submission" +
                    " --image " + kPython + " --out " + Out());
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("Accuracy"));
  EXPECT_THAT(r.out, HasSubstr("Error rate"));
  EXPECT_THAT(r.out, HasSubstr("lower is better"));
  // Results-only: the predictions themselves are the prediction output.
  EXPECT_TRUE(fs::exists(fs::path(Out()) / "prediction/output/metadata"));
}

// The iris shape (Codabench's competition_15_iris.zip): a v1.5 bundle with
// numbered phases, programs and data as zips inside it, an anchored
// leaderboard, `python $ingestion_program/...` commands.
class V15IngestionBundleTest : public RunLocalTest {
 protected:
  void SetUp() override {
    RunLocalTest::SetUp();
    bundle_ = tmp_ / "v15_ingestion.zip";
    std::string make = std::string("bash ") + CW_SOURCE_DIR +
                       "/tests/fixtures/make_v15_bundle.sh v15_ingestion_bundle " +
                       bundle_.string();
    ASSERT_EQ(std::system(make.c_str()), 0);
  }
  WorkerRun Run(const std::string& submission, const std::string& phase) {
    return RunWorker(bundle_.string() + " " + CW_SOURCE_DIR + "/tests/fixtures/" + submission +
                     " --phase " + phase + " --image " + kPython + " --out " + Out());
  }
  std::string OutFile(const std::string& rel) const { return ReadFile(fs::path(Out()) / rel); }
  fs::path bundle_;
};

// Results only, as submission_15_iris_result.zip: the ingestion program
// imports the participant's model, finds none and exits 1. As with the
// Python worker, the prediction step still ends (the submission's files
// are its output) and the scoring program scores them.
TEST_F(V15IngestionBundleTest, ResultsOnlyIsScoredThoughTheIngestionProgramExits1) {
  WorkerRun r = Run("v15_ingestion_results", "1");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("Prediction score  0.8000  (set1_score, higher is better)"));
  EXPECT_THAT(r.out, HasSubstr("(Duration, higher is better)"));
  EXPECT_THAT(OutFile("prediction/logs/ingestion_stderr.txt"),
              HasSubstr("No module named 'model'"));
  // The exit is shown, and the prediction step still ends in Scoring.
  EXPECT_THAT(r.out + r.err, HasSubstr("The ingestion program exited with code 1"));
  EXPECT_THAT(r.out + r.err, HasSubstr("[prediction] Scoring"));
  EXPECT_THAT(OutFile("prediction/output/metadata"), HasSubstr("ingestionExitCode: 1"));
  EXPECT_EQ(OutFile("prediction/output/tiny_valid.predict"), "0\n1\n2\n1\n2\n");
  // The scoring program saw the exit code in input/res/metadata.
  EXPECT_THAT(OutFile("scoring/logs/stdout.txt"), HasSubstr("ingestionExitCode=1"));
  EXPECT_THAT(OutFile("scoring/output/scores.txt"), HasSubstr("set1_score: 0.800000\n"));

  // The final phase scores the same files against its own reference data.
  r = Run("v15_ingestion_results", "2");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("Prediction score  0.5000  (set1_score, higher is better)"));
}

// Code, as submission_15_iris_code.zip: model.py and a `metadata` without a
// command; the ingestion program imports it and writes the predictions.
TEST_F(V15IngestionBundleTest, CodeSubmissionIsRunByTheIngestionProgram) {
  WorkerRun r = Run("v15_ingestion_code", "Development");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("Prediction score  1.0000  (set1_score, higher is better)"));
  EXPECT_THAT(OutFile("prediction/output/metadata"), HasSubstr("ingestionExitCode: 0"));
  EXPECT_THAT(OutFile("prediction/logs/ingestion_stdout.txt"),
              HasSubstr("ingestion: tiny: predictions written"));
  EXPECT_EQ(OutFile("prediction/output/tiny_test.predict"), "0\n1\n2\n2\n");

  r = Run("v15_ingestion_code", "2");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("Prediction score  0.7500  (set1_score, higher is better)"));
}

// The multi-task shape (Codabench's competition_v2_multi_task.zip): v2,
// `tasks:` sharing program folders, data folders per task, one phase of
// all tasks; the submission a bare model.py the ingestion program imports.
TEST_F(RunLocalTest, V2MultiTaskBundleScoresEachTask) {
  fs::path bundle = tmp_ / "v2_multitask.zip";
  std::string make = std::string("cd ") + CW_SOURCE_DIR +
                     "/tests/fixtures/v2_multitask_bundle && zip -qrX " + bundle.string() + " .";
  ASSERT_EQ(std::system(make.c_str()), 0);
  const std::string submission =
      std::string(CW_SOURCE_DIR) + "/tests/fixtures/v2_multitask_submission";
  struct Case {
    const char* task;
    const char* score;
  };
  for (const Case& c : {Case{"0", "Prediction score  1.0000  (accuracy, higher is better)"},
                        Case{"1", "Prediction score  0.7500  (accuracy, higher is better)"}}) {
    SCOPED_TRACE(std::string("task ") + c.task);
    WorkerRun r = RunWorker(bundle.string() + " " + submission + " --task " + c.task +
                            " --image " + kPython + " --out " + Out() + "-" + c.task);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.score));
    EXPECT_THAT(r.out, HasSubstr("(duration, higher is better)"));
    EXPECT_TRUE(fs::exists(fs::path(Out() + "-" + c.task) / "prediction/output/prediction"));
  }
}

TEST_F(RunLocalTest, StdoutAndStderrStaySeparate) {
  fs::path bundle = MakeBundle("echo 'score: 0.5' > /app/output/scores.txt");
  fs::path sub = MakeSubmission("echo to-stdout; echo to-stderr 1>&2; echo more-stdout");
  WorkerRun r = RunWorker(bundle.string() + " " + sub.string() + " --out " + Out());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string out_log = ReadFile(fs::path(Out()) / "prediction/logs/stdout.txt");
  std::string err_log = ReadFile(fs::path(Out()) / "prediction/logs/stderr.txt");
  EXPECT_EQ(out_log, "to-stdout\nmore-stdout\n");
  EXPECT_EQ(err_log, "to-stderr\n");
  EXPECT_THAT(r.out, HasSubstr("submission        ! to-stderr"));
  EXPECT_THAT(r.out, HasSubstr("submission        | to-stdout"));
  EXPECT_THAT(r.out, HasSubstr("0.5"));
}

TEST_F(RunLocalTest, TimeLimitKillsTheProgramAndLeavesNoContainer) {
  fs::path bundle = MakeBundle("echo 'score: 1' > /app/output/scores.txt", 2);
  fs::path sub = MakeSubmission("echo started; sleep 300");
  WorkerRun r = RunWorker(bundle.string() + " " + sub.string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("Execution Time Limit exceeded. Limit was 2 seconds"));
  EXPECT_LT(r.seconds, 30);
  EXPECT_EQ(ReadFile(fs::path(Out()) / "prediction/logs/stdout.txt"), "started\n");
  // TearDown checks that no container is left.
}

TEST_F(RunLocalTest, ScoringProgramWithoutScoresFailsClearly) {
  fs::path bundle = MakeBundle("echo nothing");
  fs::path sub = MakeSubmission("true");
  WorkerRun r = RunWorker(bundle.string() + " " + sub.string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("scoring failed: Could not find scores file"));
}

TEST_F(RunLocalTest, IngestionWithoutCommandFails) {
  fs::path bundle = MakeBundle("true", 60, "placeholder");
  WriteFile(bundle / "ingestion_program/metadata.yaml", "description: no command\n");
  fs::path sub = MakeSubmission("true");
  WorkerRun r = RunWorker(bundle.string() + " " + sub.string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("has no 'command'"));
}

TEST_F(RunLocalTest, MissingImageFailsWithTheEnginesReasonQuickly) {
  fs::path bundle = MakeBundle("true");
  fs::path sub = MakeSubmission("true");
  WorkerRun r = RunWorker(bundle.string() + " " + sub.string() +
                    " --image codabench-worker-test/no-such-image:1 --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("Pull for codabench-worker-test/no-such-image:1 failed"));
  EXPECT_THAT(r.err, HasSubstr("Docker_Image_Pull_Fail"));
  EXPECT_LT(r.seconds, 60);
}

TEST_F(RunLocalTest, BadBundlesAreRefusedWithAReason) {
  fs::path sub = MakeSubmission("true");
  WriteFile(tmp_ / "notzip.zip", "hello");
  WorkerRun r = RunWorker((tmp_ / "notzip.zip").string() + " " + sub.string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error:"));
  EXPECT_THAT(r.err, Not(HasSubstr("Running")));

  fs::create_directories(tmp_ / "empty");
  r = RunWorker((tmp_ / "empty").string() + " " + sub.string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("competition.yaml"));

  fs::path keyed = MakeBundle("true");
  std::string yaml = ReadFile(keyed / "competition.yaml");
  yaml.replace(yaml.find("scoring_program/"), 16, "1b3c7c1e-8b0a-4d7e-9a55-0c9d2e4f6a11");
  WriteFile(keyed / "competition.yaml", yaml);
  r = RunWorker(keyed.string() + " " + sub.string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("only a Codabench server can resolve"));
}

TEST_F(RunLocalTest, BrokenSubmissionZipIsRefused) {
  fs::path bundle = MakeBundle("true");
  WriteFile(tmp_ / "sub.zip", "PK\x03\x04 truncated garbage");
  WorkerRun r = RunWorker(bundle.string() + " " + (tmp_ / "sub.zip").string() + " --out " + Out());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("submission could not be unpacked"));
}

}  // namespace
}  // namespace cw
