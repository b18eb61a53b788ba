#include "job/job_filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "common/files.h"

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

}  // namespace
}  // namespace cw
