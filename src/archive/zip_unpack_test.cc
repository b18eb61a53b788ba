// Unpacking (ExtractZip, zip_unpack.cc): modes, links in the way, data that
// lies about its size, the free-space reserve, cancelling, and cleaning up.
#include "archive/zip.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <cerrno>
#include <string>
#include <vector>

#include "archive/zip_test_util.h"
#include "common/test_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cw {
namespace {

using namespace zip_test;  // NOLINT: the shared fixture and zip makers
using ::testing::HasSubstr;

class ZipUnpackTest : public ZipTest {};

TEST_F(ZipUnpackTest, NestedDirsAndPermissionDefaults) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"top/", "", true, S_IFDIR | 0500},
                {"top/mid/deep/f.txt", "x", false, S_IFREG | 0400},
                {"top/tool", "#!/bin/sh\n", false, S_IFREG | 04755},
                {"dosfile.txt", "d", false, 0, true}});
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  // Owner always keeps read/write (and search on folders); set-uid dropped.
  EXPECT_EQ(Mode(dest / "top"), 0700u);
  EXPECT_EQ(Mode(dest / "top" / "mid" / "deep" / "f.txt"), 0600u);
  EXPECT_EQ(Mode(dest / "top" / "tool"), 0755u);
  EXPECT_EQ(Mode(dest / "dosfile.txt"), 0644u);
  EXPECT_EQ(ReadFile(dest / "top" / "mid" / "deep" / "f.txt"), "x");
}

TEST_F(ZipUnpackTest, DoesNotWriteThroughFileLinkAlreadyInDest) {
  fs::path outside = root_ / "outside.txt";
  WriteFile(outside, "keep");
  fs::path dest = root_ / "dest";
  fs::create_directories(dest);
  fs::create_symlink(outside, dest / "f.txt");
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"f.txt", "evil"}});
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  EXPECT_FALSE(stats.ok());
  EXPECT_EQ(ReadFile(outside), "keep");
}

TEST_F(ZipUnpackTest, FileInTheWayOfAFolderIsInvalidInput) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a", "file"}, {"a/b.txt", "x"}});
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
}

TEST_F(ZipUnpackTest, CorruptDataIsCaught) {
  fs::path zip = root_ / "in.zip";
  std::string content(5000, 'z');
  MakeZip(zip, {{"z.txt", content}});
  std::string bytes = ReadFile(zip);
  // Flip a byte in the compressed data, right after the 30-byte local header and name.
  std::size_t pos = 30 + std::string("z.txt").size() + 3;
  bytes[pos] = static_cast<char>(bytes[pos] ^ 0x55);
  WriteFile(zip, bytes);
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
}

TEST_F(ZipUnpackTest, LyingSizeInTheHeadersIsStoppedWhileWriting) {
  fs::path zip = root_ / "liar.zip";
  MakeZip(zip, {{"sub/first.txt", "written before the liar"}, {"liar.bin", std::string(3'000'000, '\0')}});
  std::string bytes = ReadFile(zip);
  std::vector<std::size_t> central = CentralHeaders(bytes);
  ASSERT_EQ(central.size(), 2u);
  // The liar's uncompressed size, in its central and its local header, says 1000 bytes.
  std::uint32_t local = static_cast<std::uint8_t>(bytes[central[1] + 42]) |
                        static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[central[1] + 43])) << 8;
  ASSERT_EQ(bytes.compare(local, 4, "PK\3\4"), 0);
  Set32(bytes, central[1] + 24, 1000);
  Set32(bytes, local + 22, 1000);
  WriteFile(zip, bytes);

  UnpackLimits limits;
  limits.max_bytes = 1'000'000;
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest, limits);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
  EXPECT_EQ(stats.status().message(),
            "the zip unpacks to more than 0.001 GB (MAX_UNPACKED_SIZE_GB=0.001); entry 'liar.bin' holds "
            "more than the zip declares, unpacking stopped");
  // What this call wrote is gone, the earlier entry and its folder included.
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
}

TEST_F(ZipUnpackTest, FreeSpaceReserveIsChecked) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a.txt", "a"}});
  UnpackLimits limits;
  limits.min_free_bytes = 1'000'000'000'000'000'000ull;
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest, limits);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kIo);
  EXPECT_THAT(stats.status().message(),
              HasSubstr("unpacking would leave less than 1000000000 GB free on " + fs::canonical(dest).string() +
                        " (MIN_FREE_DISK_GB=1000000000)"));
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
  limits.min_free_bytes = 1;  // a reserve that fits
  stats = ExtractZip(zip, dest, limits);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
}

TEST_F(ZipUnpackTest, CancelStopsUnpackingAndRemovesWhatWasWritten) {
  fs::path zip = root_ / "in.zip";
  std::string big(2'000'000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  MakeZip(zip, {{"d/small.txt", "s"}, {"d/big.bin", big}});
  int calls = 0;
  int cancel_at = 0;
  UnpackLimits limits;
  limits.cancelled = [&] { return ++calls >= cancel_at; };
  // First find how often it is asked when nothing is cancelled...
  cancel_at = 1 << 30;
  fs::path dest = root_ / "dest";
  ASSERT_TRUE(ExtractZip(zip, dest, limits).ok());
  int total = calls;
  ASSERT_GT(total, 20);  // once per 64 KiB chunk at least
  fs::remove_all(dest);
  // ...then cancel in the middle of the big file.
  calls = 0;
  cancel_at = total - 5;
  Result<ExtractStats> stats = ExtractZip(zip, dest, limits);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kCancelled);
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
}

// A full disk while unpacking: IoError naming the entry (never the host's
// folders), and everything the call wrote taken back.
TEST_F(ZipUnpackTest, AFullDiskStopsTheUnpackingAndTakesItAllBack) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a.txt", "a"}, {"sub/b.txt", "b"}, {"sub/c.txt", "c"}});
  fs::path dest = root_ / "dest";
  WriteFile(dest / "before.txt", "was there");
  testing::TestEnv env;
  env.FailNthWrite(2, ENOSPC);
  Result<ExtractStats> stats = ExtractZip(zip, dest, {}, env);
  ASSERT_EQ(stats.status().code(), Code::kIo) << stats.status().ToString();
  EXPECT_EQ(stats.status().message(), "cannot write 'sub/b.txt': no space left on the worker's disk");
  EXPECT_EQ(env.injected(), 1);
  EXPECT_EQ(Listing(dest), std::vector<std::string>{"before.txt"});
}

TEST_F(ZipUnpackTest, AnIoErrorOnOneFileTakesItAllBack) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a.txt", "a"}, {"deep/er/c.txt", std::string(200'000, 'c')}});
  fs::path dest = root_ / "dest";
  testing::TestEnv env;
  env.FailWritesTo("*/deep/er/c.txt", EIO);
  Result<ExtractStats> stats = ExtractZip(zip, dest, {}, env);
  ASSERT_EQ(stats.status().code(), Code::kIo);
  EXPECT_THAT(stats.status().message(), HasSubstr("'deep/er/c.txt': Input/output error"));
  EXPECT_THAT(stats.status().message(), ::testing::Not(HasSubstr(root_.string())));
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
}

TEST_F(ZipUnpackTest, WithoutFaultsTheTestEnvUnpacksAsTheRealOne) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a.txt", "a"}, {"big.bin", std::string(200'000, 'x')}});
  testing::TestEnv env;
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest", {}, env);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(root_ / "dest" / "big.bin"), std::string(200'000, 'x'));
  EXPECT_EQ(env.writes(), 5);  // a.txt, then 200 000 bytes in 64 KiB chunks
}

}  // namespace
}  // namespace cw
