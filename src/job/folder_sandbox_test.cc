#include "job/folder_sandbox.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "job/job_folder.h"
#include "job/test_fakes.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FakeEngine;

// Sets or clears the immutable flag: what stops even root's unlink, so a
// root test process meets the refusal a plain user meets on root's files.
bool SetImmutable(const fs::path& p, bool on) {
  int fd = ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  ok = ok && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  ::close(fd);
  return ok;
}

class FolderSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-folder-sandbox-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    engine_.images.insert("codabench-worker/sandbox:abc");
    sandbox_.engine = &engine_;
    sandbox_.image = "codabench-worker/sandbox:abc";
    sandbox_.base_dir = tmp_;
    sandbox_.host_dir = "/srv/codabench";
    sandbox_.labels = {{"org.codabench.node", "w@a"}};
  }
  void TearDown() override {
    SetImmutable(job_ / "h" / "stuck", false);
    fs::remove_all(tmp_);
  }

  // A job folder holding a file nobody here may remove; false when this
  // filesystem has no immutable flag (or this process may not set it).
  bool MakeStuckFolder() {
    job_ = tmp_ / "jobs" / "job-1-prediction-x";
    fs::create_directories(job_ / "h");
    std::ofstream(job_ / "h" / "stuck") << "x";
    return SetImmutable(job_ / "h" / "stuck", true);
  }

  fs::path tmp_, job_;
  FakeEngine engine_;
  FolderSandbox sandbox_;
};

TEST_F(FolderSandboxTest, RunsTheWorkersImageAsTheJobsContainersAreLabelled) {
  engine_.programs["folder-size"] = [](const ContainerSpec&, const OutputFn& out,
                                       const std::atomic<bool>&) {
    out(StreamKind::kStdout, "12288\n");
    return 0;
  };
  auto bytes = SandboxSize(sandbox_, tmp_ / "jobs" / "j");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, 12288u);
  ASSERT_EQ(engine_.created.size(), 1u);
  const ContainerSpec& spec = engine_.created[0];
  EXPECT_EQ(spec.cmd, (std::vector<std::string>{"/sandbox", "size", "/target"}));
  ASSERT_EQ(spec.mounts.size(), 1u);
  EXPECT_EQ(spec.mounts[0].host_path, "/srv/codabench/jobs/j");  // the engine's view
  EXPECT_TRUE(spec.mounts[0].read_only);
  EXPECT_EQ(spec.labels.at("org.codabench.node"), "w@a");  // the sweep finds a stray one
  EXPECT_TRUE(spec.network_disabled);
  EXPECT_EQ(engine_.live_containers(), 0u);
}

TEST_F(FolderSandboxTest, AFailureSaysWhyWithItsErrorLines) {
  engine_.programs["folder-remove"] = [](const ContainerSpec&, const OutputFn& out,
                                         const std::atomic<bool>&) {
    out(StreamKind::kStderr, "sandbox: cannot remove x: Operation not permitted\n");
    return 1;
  };
  auto r = RunSandbox(sandbox_, "remove", tmp_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("exit code 1"));
  EXPECT_THAT(r.status().message(), HasSubstr("Operation not permitted"));
  FolderSandbox none;
  EXPECT_FALSE(RunSandbox(none, "remove", tmp_).ok());
}

TEST_F(FolderSandboxTest, WhatTheWorkerCannotRemoveGoesThroughTheSandbox) {
  if (!MakeStuckFolder()) GTEST_SKIP() << "no immutable flag here";
  EXPECT_FALSE(JobFolder::Remove(job_));  // alone, the worker leaves it
  EXPECT_TRUE(fs::exists(job_ / "h" / "stuck"));
  fs::path target;
  engine_.programs["folder-remove"] = [&](const ContainerSpec& spec, const OutputFn&,
                                          const std::atomic<bool>&) {
    EXPECT_FALSE(spec.mounts.at(0).read_only);
    target = tmp_ / fs::relative(spec.mounts.at(0).host_path, "/srv/codabench");
    SetImmutable(target / "h" / "stuck", false);  // root in the container may
    for (const auto& e : fs::directory_iterator(target)) fs::remove_all(e.path());
    return 0;
  };
  EXPECT_TRUE(JobFolder::Remove(job_, sandbox_));
  EXPECT_EQ(target, job_);
  EXPECT_FALSE(fs::exists(job_));
}

TEST_F(FolderSandboxTest, TheSweepUsesTheSandboxToo) {
  if (!MakeStuckFolder()) GTEST_SKIP() << "no immutable flag here";
  engine_.programs["folder-remove"] = [&](const ContainerSpec& spec, const OutputFn&,
                                          const std::atomic<bool>&) {
    fs::path target = tmp_ / fs::relative(spec.mounts.at(0).host_path, "/srv/codabench");
    SetImmutable(target / "h" / "stuck", false);
    for (const auto& e : fs::directory_iterator(target)) fs::remove_all(e.path());
    return 0;
  };
  JobEnvironment env;
  env.base_dir = tmp_;
  EXPECT_EQ(RemoveLeftoverJobFolders(env, sandbox_), 1);
  EXPECT_TRUE(fs::is_empty(tmp_ / "jobs"));
}

}  // namespace
}  // namespace cw
