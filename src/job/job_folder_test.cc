#include "job/job_folder.h"

#include <fstream>

#include <gtest/gtest.h>

#include "common/files.h"
#include "job/job_filesystem.h"

namespace cw {
namespace {
namespace fs = std::filesystem;

class JobFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-job-folder-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    env_.base_dir = tmp_;
    env_.host_dir = tmp_;
  }
  void TearDown() override { fs::remove_all(tmp_); }

  fs::path tmp_;
  JobEnvironment env_;
};

fs::perms Others(const fs::path& p) {
  return fs::status(p).permissions() & (fs::perms::group_all | fs::perms::others_all);
}

TEST_F(JobFolderTest, IsPrivateWithOpenOutputAndTheSubfoldersProgramsSee) {
  env_.jobs_subfolder = "compute-worker@a";
  auto f = JobFolder::Create(env_, "job-7-prediction-");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->root().parent_path(), tmp_ / "jobs" / "compute-worker@a");
  EXPECT_EQ(f->root().filename().string().rfind("job-7-prediction-", 0), 0u);
  for (const fs::path& p : {tmp_ / "jobs", JobsFolder(env_), f->root()}) {
    EXPECT_EQ(Others(p), fs::perms::none) << p;
  }
  EXPECT_EQ(fs::status(f->output()).permissions(), fs::perms::all);
  EXPECT_EQ(fs::status(f->shared()).permissions(), fs::perms::all);
  for (const fs::path& p : {f->input(), f->logs(), f->bundles(), f->data()}) {
    EXPECT_TRUE(fs::is_directory(p)) << p;
  }
  EXPECT_EQ(f->data(), tmp_ / "data");
  EXPECT_EQ(f->program(ProgramKind::kIngestion), f->root() / "ingestion_program");
  EXPECT_EQ(f->program(ProgramKind::kProgram), f->root() / "program");
  EXPECT_EQ(f->Writable().size(), 6u);

  JobFolder::Remove(f->root());
  EXPECT_FALSE(fs::exists(f->root()));
}

TEST_F(JobFolderTest, TwoJobsOfOneSubmissionGetTwoFolders) {
  auto a = JobFolder::Create(env_, "job-7-prediction-");
  auto b = JobFolder::Create(env_, "job-7-prediction-");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->root(), b->root());
  EXPECT_EQ(a->root().parent_path(), tmp_ / "jobs");
}

TEST_F(JobFolderTest, TheSweepRemovesOnlyThisNodesLeftovers) {
  env_.jobs_subfolder = "compute-worker@a";
  for (const char* p : {"jobs/compute-worker@a/job-1-prediction-x/output/big",
                        "jobs/compute-worker@a/job-3-scoring-z/logs/program.stdout",
                        "jobs/compute-worker@b/job-2-prediction-y/output/big"}) {
    fs::create_directories((tmp_ / p).parent_path());
    std::ofstream(tmp_ / p) << "data";
  }
  EXPECT_EQ(RemoveLeftoverJobFolders(env_), 2);
  EXPECT_TRUE(fs::is_empty(tmp_ / "jobs/compute-worker@a"));
  EXPECT_TRUE(fs::exists(tmp_ / "jobs/compute-worker@b/job-2-prediction-y"));
  env_.jobs_subfolder = "nobody";
  EXPECT_EQ(RemoveLeftoverJobFolders(env_), 0);  // no folder: nothing to sweep
}

TEST_F(JobFolderTest, WithAFilesystemOfItsOwnTheProgramsFoldersAreOnIt) {
  OutputLimitChoice probe =
      ProbeJobFilesystems(tmp_ / "jobs", true, "unix:///var/run/docker.sock");
  if (!probe.job_filesystem) GTEST_SKIP() << probe.how;
  env_.jobs_subfolder = "compute-worker@a";
  env_.limits.job_filesystem = true;
  env_.limits.max_output_bytes = 1ull << 30;
  env_.limits.max_unpacked_bytes = 1ull << 30;
  auto f = JobFolder::Create(env_, "job-7-prediction-");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE(f->own_filesystem());
  EXPECT_EQ(f->work(), f->root() / "work");
  EXPECT_TRUE(IsMountPoint(f->work()));
  EXPECT_EQ(f->output(), f->work() / "output");
  EXPECT_EQ(f->program(ProgramKind::kProgram), f->work() / "program");
  EXPECT_EQ(f->logs(), f->root() / "logs");  // the worker's own, on the host's disk
  EXPECT_EQ(fs::status(f->output()).permissions(), fs::perms::all);
  EXPECT_EQ(Others(f->work()), fs::perms::none);
  for (const fs::path& p : f->Writable()) EXPECT_EQ(p.parent_path(), f->work()) << p;

  JobFolder::Remove(f->root());
  EXPECT_FALSE(fs::exists(f->root()));

  // A killed run's: the sweep unmounts it before removing it.
  auto left = JobFolder::Create(env_, "job-8-scoring-");
  ASSERT_TRUE(left.ok() && left->own_filesystem());
  EXPECT_EQ(RemoveLeftoverJobFolders(env_), 1);
  EXPECT_FALSE(fs::exists(left->root()));
}

TEST_F(JobFolderTest, WithoutAFilesystemOfItsOwnTheFoldersStayInTheRoot) {
  env_.limits.job_filesystem = true;
  env_.limits.max_output_bytes = 0;  // no limit to hold
  auto f = JobFolder::Create(env_, "job-7-prediction-");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->own_filesystem());
  EXPECT_EQ(f->output(), f->root() / "output");
}

}  // namespace
}  // namespace cw
