// The fixture the JobRunner tests share (job_runner_test.cc and its
// themed siblings): a temporary base folder, fake storage and engine, a
// recording reporter, and run_args for a prediction and a scoring job.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "archive/zip.h"
#include "common/files.h"
#include "common/test_env.h"
#include "job/job_runner.h"
#include "job/test_fakes.h"
#include "storage/bundle_cache.h"
#include "storage/hash.h"

namespace cw::job_testing {
namespace fs = std::filesystem;
using testing::FakeEngine;
using testing::FakeStorage;
using testing::RecordingReporter;

inline constexpr const char* kImage = "codalab/codalab-legacy:py37";

inline std::string ReadFile(const fs::path& p) {
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
    env_.env = &test_env_;  // the real clock and disk until a test says otherwise
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // Zips `files` (relative path -> content) and stores it as mem://name.
  std::string Bundle(const std::string& name, const std::map<std::string, std::string>& files) {
    std::string url = testing::StoreBundle(*storage_, tmp_ / "src", name, files);
    EXPECT_FALSE(url.empty()) << name;
    return url;
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

  // Whether the job left nothing under the base folder's jobs/.
  bool NoJobFolderLeft() const {
    std::error_code ec;
    return !fs::exists(env_.base_dir / "jobs", ec) || fs::is_empty(env_.base_dir / "jobs", ec);
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
  testing::TestEnv test_env_;  // before env_, which points at it
  JobEnvironment env_;
};


}  // namespace cw::job_testing
