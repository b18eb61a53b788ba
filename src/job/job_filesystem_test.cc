#include "job/job_filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/files.h"
#include "job/job_folder.h"
#include "job/spare_job_folders.h"

namespace cw {
namespace {
namespace fs = std::filesystem;

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;
constexpr const char* kEngineSocket = "unix:///var/run/docker.sock";

TEST(JobFilesystemBytes, TheLimitRoomForTheBundlesAndAMargin) {
  JobLimits limits;
  limits.max_output_bytes = 20 * kGiB;
  limits.max_unpacked_bytes = 50 * kGiB;
  limits.min_free_bytes = 2 * kGiB;
  // Five bundles' worth of room when the host has it...
  EXPECT_EQ(JobFilesystemBytes(limits, 1000 * kGiB), 20 * kGiB + 250 * kGiB + 256 * kMiB);
  // ...else what the host can give above MIN_FREE_DISK_GB.
  EXPECT_EQ(JobFilesystemBytes(limits, 12 * kGiB), 20 * kGiB + 10 * kGiB + 256 * kMiB);
  EXPECT_EQ(JobFilesystemBytes(limits, 1 * kGiB), 20 * kGiB + 256 * kMiB);
  limits.max_unpacked_bytes = 0;  // no cap on bundles: the host's free bytes
  EXPECT_EQ(JobFilesystemBytes(limits, 100 * kGiB), 20 * kGiB + 98 * kGiB + 256 * kMiB);
}

TEST(JobFilesystemProbe, AWorkerThatSeesTheFolderElsewhereWalks) {
  auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-jobfs-probe-");
  ASSERT_TRUE(dir.ok());
  OutputLimitChoice c = ProbeJobFilesystems(*dir, /*same_view=*/false, kEngineSocket);
  EXPECT_FALSE(c.job_filesystem);
  EXPECT_NE(c.how.find("walking"), std::string::npos) << c.how;
  // An engine whose daemon cannot be seen (a TCP address) may not see the mounts.
  c = ProbeJobFilesystems(*dir, true, "tcp://127.0.0.1:2375");
  EXPECT_FALSE(c.job_filesystem);
  EXPECT_TRUE(fs::is_empty(*dir));
  fs::remove_all(*dir);
}

// The real thing: root, a loop device and mkfs.ext4 (CI has them; a
// developer's machine may not).
class JobFilesystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-jobfs-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    OutputLimitChoice c = ProbeJobFilesystems(tmp_, true, kEngineSocket);
    if (!c.job_filesystem) GTEST_SKIP() << c.how;
  }
  void TearDown() override {
    UnmountUnder(tmp_);
    fs::remove_all(tmp_);
  }
  fs::path tmp_;
};

TEST_F(JobFilesystemTest, CountsWhatNoWalkSeesAndEndsFull) {
  const fs::path point = tmp_ / "work";
  ASSERT_TRUE(MountJobFilesystem(tmp_ / "work.img", point, 64 * kMiB).ok());
  EXPECT_TRUE(IsMountPoint(point));
  EXPECT_FALSE(IsMountPoint(tmp_));
  auto before = UsedBytes(point);
  ASSERT_TRUE(before.ok());
  // A file deleted while open, in a folder nobody may read.
  fs::create_directories(point / "h");
  int fd = ::open((point / "h" / "f").c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::posix_fallocate(fd, 0, 16 * kMiB), 0);
  ::unlink((point / "h" / "f").c_str());
  ::chmod((point / "h").c_str(), 0);
  auto after = UsedBytes(point);
  ASSERT_TRUE(after.ok());
  EXPECT_GE(*after - *before, 16 * kMiB);
  EXPECT_EQ(TreeSize(point), 0u);  // the walk sees none of it
  // It cannot grow past its size.
  EXPECT_NE(::posix_fallocate(fd, 0, 128 * kMiB), 0);
  ::close(fd);
  EXPECT_EQ(UnmountUnder(tmp_), 1);
  EXPECT_FALSE(IsMountPoint(point));
  // Sparse: the image took little of the host's disk.
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "work.img").c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, 32 * kMiB);
}

TEST_F(JobFilesystemTest, UnmountsEverythingUnderAFolderDeepestFirst) {
  ASSERT_TRUE(MountJobFilesystem(tmp_ / "a.img", tmp_ / "a", 16 * kMiB).ok());
  ASSERT_TRUE(MountJobFilesystem(tmp_ / "b.img", tmp_ / "a" / "b", 16 * kMiB).ok());
  EXPECT_EQ(UnmountUnder(tmp_ / "a"), 2);
  EXPECT_EQ(UnmountUnder(tmp_ / "a"), 0);
  std::error_code ec;
  fs::remove_all(tmp_ / "a", ec);
  EXPECT_FALSE(ec) << ec.message();
}

// A job's folder made ahead: the job takes it under its own name, its
// filesystem mounted, and the next is made fresh; those no job took go
// with the slot.
TEST_F(JobFilesystemTest, AJobTakesAFolderMadeAheadAndTheNextIsAnother) {
  JobEnvironment env;
  env.base_dir = tmp_;
  env.jobs_subfolder = "node";
  env.limits.job_filesystem = true;
  env.limits.max_output_bytes = 64 * kMiB;
  env.limits.max_unpacked_bytes = 64 * kMiB;
  env.spare_folders = std::make_shared<SpareJobFolders>(JobsFolder(env), env.limits);
  env.spare_folders->Prepare();
  for (int i = 0; i < 500 && env.spare_folders->ready() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(env.spare_folders->ready(), 1u);
  std::vector<fs::path> spares;
  for (const auto& e : fs::directory_iterator(JobsFolder(env))) spares.push_back(e.path());
  ASSERT_EQ(spares.size(), 1u);
  EXPECT_EQ(spares[0].filename().string().rfind("spare-", 0), 0u) << spares[0];
  EXPECT_TRUE(IsMountPoint(spares[0] / "work"));

  auto job = JobFolder::Create(env, "job-7-prediction-");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->root().filename().string().rfind("job-7-prediction-", 0), 0u) << job->root();
  EXPECT_TRUE(job->own_filesystem());
  EXPECT_EQ(job->work(), job->root() / "work");
  EXPECT_TRUE(IsMountPoint(job->work())) << "the mount moved with its folder";
  EXPECT_FALSE(fs::exists(spares[0]));
  EXPECT_TRUE(fs::is_directory(job->output()));
  EXPECT_TRUE(fs::is_directory(job->logs()));
  // What the job writes lands on its own filesystem.
  auto before = UsedBytes(job->work());
  ASSERT_TRUE(before.ok());
  { std::ofstream(job->output() / "x") << std::string(4 * kMiB, 'x'); }
  ::sync();
  EXPECT_GE(*UsedBytes(job->work()) - *before, 4 * kMiB);

  // The next spare is another folder and filesystem, empty.
  for (int i = 0; i < 500 && env.spare_folders->ready() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(env.spare_folders->ready(), 1u);
  auto next = JobFolder::Create(env, "job-8-scoring-");
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->root(), job->root());
  EXPECT_TRUE(fs::is_empty(next->output()));
  EXPECT_TRUE(JobFolder::Remove(job->root()));
  EXPECT_TRUE(JobFolder::Remove(next->root()));

  // A spare no job took goes with the slot, filesystem and all.
  for (int i = 0; i < 500 && env.spare_folders->ready() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  env.spare_folders.reset();
  EXPECT_TRUE(fs::is_empty(JobsFolder(env)));
  EXPECT_EQ(UnmountUnder(tmp_), 0) << "a spare's filesystem stayed mounted";
}

}  // namespace
}  // namespace cw
