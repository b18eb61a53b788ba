// Issue 17, items 3 and 4, with the real binary and the real Docker engine:
// MAX_OUTPUT_SIZE_GB holds against bytes a walk cannot see, and a plain
// user's worker removes whatever programs left as root. Writes are zeros
// (dd), stopped at about 1.5 GB; nothing is left on the disk after.
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
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

constexpr const char* kBusybox = "codabench-worker-test/busybox:latest";

class DiskLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-disk-limits-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    fs::permissions(tmp_, fs::perms::all);  // a plain user's worker writes here too
    WriteFile(tmp_ / "bundle/competition.yaml",
              "version: 2\ntitle: disk\ndocker_image: " + std::string(kBusybox) +
                  "\ntasks:\n  - index: 0\n    name: t\n    scoring_program: scoring_program/\n"
                  "phases:\n  - index: 0\n    name: Dev\n    execution_time_limit: 120\n"
                  "    tasks: [0]\nleaderboards:\n  - index: 0\n    title: R\n    key: R\n"
                  "    columns:\n      - {title: Score, key: score, index: 0, sorting: desc}\n");
    WriteFile(tmp_ / "bundle/scoring_program/metadata.yaml",
              "command: |-\n  echo 'score: 1' > /app/output/scores.txt\n");
  }
  void TearDown() override {
    auto left = engine_.ListByLabel("org.codabench.run-local", "1");
    ASSERT_TRUE(left.ok());
    EXPECT_TRUE(left->empty()) << left->size() << " containers left behind";
    for (const auto& id : *left) (void)engine_.Remove(id, true);
    fs::remove_all(tmp_);
  }

  struct Run {
    int exit_code = -1;
    std::string err;
    double seconds = 0;
  };
  // run-local of the bundle and a submission running `command`, as `user`
  // when set.
  Run RunWorker(const std::string& command, const std::string& env,
                const std::string& user = "") {
    WriteFile(tmp_ / "sub/metadata.yaml", "command: |-\n  " + command + "\n");
    std::string cmd = "cd " + tmp_.string() + " && " + env + " " +
                      (user.empty() ? "" : "runuser -u " + user + " -- env " + env + " ") +
                      CW_WORKER_BINARY + " run-local bundle sub --pull never --out " +
                      (tmp_ / "out").string() + " >/dev/null 2>" + (tmp_ / "err").string();
    if (!user.empty()) fs::permissions(tmp_ / "sub", fs::perms::all);
    Run r;
    auto start = std::chrono::steady_clock::now();
    int status = std::system(cmd.c_str());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = ReadFile(tmp_ / "err");
    return r;
  }
  // No job folder left, whatever the programs made.
  // The job ended Failed for its output, within seconds of passing 1 GB.
  static void ExpectStoppedPastOneGb(const Run& r) {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("Job output larger than 1 GB"));
    EXPECT_LT(r.seconds, 30);
  }

  void ExpectNoJobFolder() {
    std::error_code ec;
    fs::path jobs = tmp_ / "out/work/jobs";
    if (!fs::exists(jobs, ec)) return;
    for (const auto& e : fs::directory_iterator(jobs, ec)) ADD_FAILURE() << e.path() << " left";
  }

  fs::path tmp_;
  DockerEngine engine_{"unix:///var/run/docker.sock"};
};

constexpr const char* kOneGb = "MAX_OUTPUT_SIZE_GB=1";

TEST_F(DiskLimitsTest, ThreeGbThroughADeletedOpenFileAreStopped) {
  Run r = RunWorker(
      "exec 3>/app/output/f && rm /app/output/f && dd if=/dev/zero bs=1M count=3000 >&3; "
      "sleep 60",
      kOneGb);
  ExpectStoppedPastOneGb(r);
  ExpectNoJobFolder();
}

TEST_F(DiskLimitsTest, ThreeGbInAPrivateFolderAreStopped) {
  Run r = RunWorker(
      "mkdir /app/output/h && chmod 700 /app/output/h && "
      "dd if=/dev/zero of=/app/output/h/f bs=1M count=3000; sleep 60",
      kOneGb);
  ExpectStoppedPastOneGb(r);
  ExpectNoJobFolder();
}

TEST_F(DiskLimitsTest, ThreeGbInTheContainersOwnFilesystemAreStopped) {
  Run r = RunWorker("dd if=/dev/zero of=/tmp/f bs=1M count=3000; sleep 60", kOneGb);
  ExpectStoppedPastOneGb(r);
}

// The systemd unit's way: a user in the engine's group (CW_TEST_PLAIN_USER,
// else cwuser, made when missing); "" when this process cannot.
std::string PlainUser() {
  const char* user = std::getenv("CW_TEST_PLAIN_USER");
  const std::string name = user ? user : "cwuser";
  if (::geteuid() != 0) return "";
  if (!::getpwnam(name.c_str()) &&
      std::system(("useradd --groups docker " + name + " >/dev/null 2>&1").c_str()) != 0) {
    return "";
  }
  return name;
}

TEST_F(DiskLimitsTest, APlainUsersWorkerSeesThreeGbInARootsPrivateFolder) {
  const std::string name = PlainUser();
  if (name.empty()) GTEST_SKIP() << "needs root and a plain user in the docker group";
  Run r = RunWorker(
      "mkdir /app/output/h && chmod 700 /app/output/h && "
      "dd if=/dev/zero of=/app/output/h/f bs=1M count=3000; sleep 60",
      kOneGb, name);
  ExpectStoppedPastOneGb(r);
  ExpectNoJobFolder();
}

TEST_F(DiskLimitsTest, APlainUsersWorkerRemovesWhatProgramsLeftAsRoot) {
  const std::string name = PlainUser();
  if (name.empty()) GTEST_SKIP() << "needs root and a plain user in the docker group";
  Run r = RunWorker(
      "mkdir -p /app/output/h/d && echo x > /app/output/h/d/f && chmod 444 /app/output/h/d/f "
      "&& chmod 555 /app/output/h/d && chmod 700 /app/output/h && "
      "mkdir /app/program/p && touch /app/program/p/x && chmod 500 /app/program/p",
      kOneGb, name);
  EXPECT_NE(r.exit_code, -1) << r.err;
  ExpectNoJobFolder();
}

}  // namespace
}  // namespace cw
