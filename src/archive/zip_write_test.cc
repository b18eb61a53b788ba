// Writing (CreateZip, zip_write.cc): round trips, and a hostile folder.
#include "archive/zip.h"

#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "archive/zip_test_util.h"
#include "common/test_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cw {
namespace {

using namespace zip_test;  // NOLINT: the shared fixture and zip makers
using ::testing::HasSubstr;

class ZipWriteTest : public ZipTest {};

TEST_F(ZipWriteTest, RoundTripKeepsTreeEmptyDirsZeroByteFilesAndExecBit) {
  fs::path src = root_ / "src";
  WriteFile(src / "run.sh", "#!/bin/sh\necho hi\n");
  fs::permissions(src / "run.sh", fs::perms(0755));
  WriteFile(src / "a" / "b" / "c.txt", "deep");
  WriteFile(src / "empty.txt", "");
  fs::create_directories(src / "empty_dir");
  fs::create_directories(src / "a" / "empty_inner");

  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  EXPECT_TRUE(LooksLikeZip(zip));

  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 3u);
  EXPECT_EQ(stats->bytes, std::string("#!/bin/sh\necho hi\n").size() + 4);

  EXPECT_EQ(ReadFile(dest / "run.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(ReadFile(dest / "a" / "b" / "c.txt"), "deep");
  EXPECT_TRUE(fs::is_regular_file(dest / "empty.txt"));
  EXPECT_EQ(fs::file_size(dest / "empty.txt"), 0u);
  EXPECT_TRUE(fs::is_directory(dest / "empty_dir"));
  EXPECT_TRUE(fs::is_directory(dest / "a" / "empty_inner"));
  EXPECT_EQ(Mode(dest / "run.sh"), 0755u);
  EXPECT_EQ(Listing(src), Listing(dest));
  // No temporary file left next to the zip.
  EXPECT_EQ(Listing(root_ / "dest").size(), Listing(src).size());
  for (auto& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().filename().string().find(".part-"), std::string::npos) << e.path();
  }
}

TEST_F(ZipWriteTest, RoundTripOfMultiChunkFile) {
  fs::path src = root_ / "src";
  std::string big;
  big.reserve(1 << 20);
  unsigned seed = 12345;
  for (int i = 0; i < (1 << 20); ++i) {
    seed = seed * 1103515245u + 12345u;
    big.push_back(static_cast<char>(seed >> 24));
  }
  WriteFile(src / "big.bin", big);
  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->bytes, big.size());
  EXPECT_TRUE(ReadFile(root_ / "dest" / "big.bin") == big);
}

TEST_F(ZipWriteTest, EmptyFolderGivesValidEmptyZip) {
  fs::path src = root_ / "src";
  fs::create_directories(src);
  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  ASSERT_TRUE(fs::exists(zip));
  EXPECT_TRUE(LooksLikeZip(zip));
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 0u);
  EXPECT_TRUE(fs::is_directory(root_ / "dest"));
}

TEST_F(ZipWriteTest, CreateZipSkipsSymlinksWithoutFollowingThem) {
  fs::path outside = root_ / "host_secret.txt";
  WriteFile(outside, "secret");
  fs::create_directories(root_ / "host_dir");
  WriteFile(root_ / "host_dir" / "x.txt", "secret too");
  fs::path src = root_ / "src";
  WriteFile(src / "real.txt", "real");
  fs::create_symlink(outside, src / "link.txt");
  fs::create_directory_symlink(root_ / "host_dir", src / "linkdir");

  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  fs::path dest = root_ / "dest";
  ASSERT_TRUE(ExtractZip(zip, dest).ok());
  EXPECT_EQ(Listing(dest), std::vector<std::string>{"real.txt"});
}

TEST_F(ZipWriteTest, CreateZipIntoTheFolderItselfDoesNotIncludeTheOldZip) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  ASSERT_TRUE(CreateZip(src, src / "out.zip").ok());
  ASSERT_TRUE(CreateZip(src, src / "out.zip").ok());
  fs::path dest = root_ / "dest";
  ASSERT_TRUE(ExtractZip(src / "out.zip", dest).ok());
  EXPECT_EQ(Listing(dest), std::vector<std::string>{"a.txt"});
}

TEST_F(ZipWriteTest, CreateZipOfMissingFolderLeavesNoFile) {
  fs::path zip = root_ / "out.zip";
  Status status = CreateZip(root_ / "nope", zip);
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_EQ(Listing(root_), std::vector<std::string>{});
}

TEST_F(ZipWriteTest, CreateZipWhereNoFolderCanBeMadeIsIoError) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  WriteFile(root_ / "blocker", "a file where a folder should be");
  Status status = CreateZip(src, root_ / "blocker" / "out.zip");
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_EQ(Listing(root_), (std::vector<std::string>{"blocker", "src", "src/a.txt"}));
}

TEST_F(ZipWriteTest, CreateZipFailureLeavesNoHalfZip) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  WriteFile(src / "locked.txt", "b");
  fs::permissions(src / "locked.txt", fs::perms::none);
  fs::path zip = root_ / "zips" / "out.zip";
  Status status = CreateZip(src, zip);
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_EQ(Listing(root_ / "zips"), std::vector<std::string>{});
}

// A plain user's worker meets a folder a program made 0700 as root: the
// reason names the folder as the participant knows it, never a host path.
TEST_F(ZipWriteTest, AFolderTheWorkerCannotListIsNamedInsideTheOutput) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to play a plain user";
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  WriteFile(src / "h" / "hidden.txt", "b");
  fs::permissions(root_, fs::perms::all);
  fs::permissions(src, fs::perms::all);
  fs::permissions(src / "h", fs::perms::owner_all);  // root's, 0700
  fs::create_directories(root_ / "zips");
  fs::permissions(root_ / "zips", fs::perms::all);
  Status status;
  std::thread plain_user([&] {
    ::setfsuid(65534);  // per thread: drops its DAC overrides
    status = CreateZip(src, root_ / "zips" / "out.zip");
  });
  plain_user.join();
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_NE(status.message().find("cannot list 'h'"), std::string::npos) << status.ToString();
  EXPECT_EQ(status.message().find(root_.string()), std::string::npos) << status.ToString();
  EXPECT_EQ(Listing(root_ / "zips"), std::vector<std::string>{});
}

// Entry name -> the Unix mode stored for it.
std::map<std::string, mode_t> StoredModes(const fs::path& zip) {
  std::map<std::string, mode_t> out;
  int err = 0;
  zip_t* za = zip_open(zip.c_str(), ZIP_RDONLY, &err);
  EXPECT_NE(za, nullptr) << err;
  if (za == nullptr) return out;
  for (zip_int64_t i = 0; i < zip_get_num_entries(za, 0); ++i) {
    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    EXPECT_EQ(zip_file_get_external_attributes(za, i, 0, &opsys, &attributes), 0);
    EXPECT_EQ(opsys, ZIP_OPSYS_UNIX);
    out[zip_get_name(za, i, 0)] = static_cast<mode_t>(attributes >> 16);
  }
  zip_discard(za);
  return out;
}

TEST_F(ZipWriteTest, CreateZipDropsSetuidSetgidAndStickyBits) {
  fs::path src = root_ / "src";
  WriteFile(src / "tool", "#!/bin/sh\n");
  ASSERT_EQ(::chmod((src / "tool").c_str(), 06755), 0);
  ASSERT_EQ(Mode(src / "tool"), 06755u);
  fs::create_directories(src / "shared");
  ASSERT_EQ(::chmod((src / "shared").c_str(), 01777), 0);
  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  std::map<std::string, mode_t> modes = StoredModes(zip);
  ASSERT_EQ(modes.size(), 2u);
  EXPECT_EQ(modes["tool"], static_cast<mode_t>(S_IFREG | 0755));
  EXPECT_EQ(modes["shared/"], static_cast<mode_t>(S_IFDIR | 0777));
}

TEST_F(ZipWriteTest, CreateZipLeavesLinkTargetsOut) {
  const std::string secret = "TOP-SECRET-host-file-content-0123456789";
  WriteFile(root_ / "host.txt", secret);
  fs::path src = root_ / "src";
  WriteFile(src / "real.txt", "real");
  fs::create_symlink(root_ / "host.txt", src / "link.txt");
  fs::create_symlink("/etc/shadow", src / "shadow");
  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  std::map<std::string, mode_t> modes = StoredModes(zip);
  ASSERT_EQ(modes.size(), 1u);
  EXPECT_EQ(modes.count("real.txt"), 1u);
  EXPECT_EQ(ReadFile(zip).find(secret), std::string::npos);
  fs::path dest = root_ / "dest";
  ASSERT_TRUE(ExtractZip(zip, dest).ok());
  EXPECT_EQ(Listing(dest), std::vector<std::string>{"real.txt"});
  EXPECT_EQ(ReadFile(dest / "real.txt"), "real");
}

TEST_F(ZipWriteTest, CreateZipSkipsFifoWithoutWaiting) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  ASSERT_EQ(::mkfifo((src / "pipe").c_str(), 0644), 0);
  fs::path zip = root_ / "out.zip";
  ::alarm(30);  // a read of the FIFO would block forever: the test times out instead
  Status status = CreateZip(src, zip);
  ::alarm(0);
  ASSERT_TRUE(status.ok()) << status.ToString();
  std::map<std::string, mode_t> modes = StoredModes(zip);
  ASSERT_EQ(modes.size(), 1u);
  EXPECT_EQ(modes.count("a.txt"), 1u);
}

TEST_F(ZipWriteTest, CreateZipKeepsAFileOfModeZero) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root reads a file of mode 0 (the worker runs as root)";
  fs::path src = root_ / "src";
  WriteFile(src / "locked.txt", "locked content");
  ASSERT_EQ(::chmod((src / "locked.txt").c_str(), 0), 0);
  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  std::map<std::string, mode_t> modes = StoredModes(zip);
  ASSERT_EQ(modes.size(), 1u);
  EXPECT_EQ(modes["locked.txt"], static_cast<mode_t>(S_IFREG));
  fs::path dest = root_ / "dest";
  ASSERT_TRUE(ExtractZip(zip, dest).ok());
  EXPECT_EQ(ReadFile(dest / "locked.txt"), "locked content");
}

// The file is replaced after the folder was listed, while the zip is being
// written (the zip's folder has libzip's temporary file in it by then).
class SwapTest : public ZipWriteTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SwapTest, FileSwappedForLinkOrFifoWhileZippingFailsCleanly) {
  const bool fifo = GetParam();
  const std::string secret = "TOP-SECRET-host-file-content-0123456789";
  WriteFile(root_ / "host.txt", secret);
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "harmless");
  fs::path zips = root_ / "zips";
  fs::create_directories(zips);
  bool swapped = false;
  auto cancelled = [&] {
    if (!swapped && !Listing(zips).empty()) {
      fs::remove(src / "a.txt");
      if (fifo) {
        EXPECT_EQ(::mkfifo((src / "a.txt").c_str(), 0644), 0);
      } else {
        fs::create_symlink(root_ / "host.txt", src / "a.txt");
      }
      swapped = true;
    }
    return false;
  };
  ::alarm(30);
  Status status = CreateZip(src, zips / "out.zip", cancelled);
  ::alarm(0);
  ASSERT_TRUE(swapped);
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr(fifo ? "stopped being a regular file" : "replaced by a symbolic link"));
  EXPECT_EQ(Listing(zips), std::vector<std::string>{});
}

TEST_F(ZipWriteTest, FolderSwappedForLinkWhileZippingIsNotFollowed) {
  // O_NOFOLLOW alone would still follow "sub" on the way to "sub/data.txt".
  fs::path host = root_ / "host";
  WriteFile(host / "data.txt", "TOP-SECRET-host-file-content-0123456789");
  fs::path src = root_ / "src";
  WriteFile(src / "sub" / "data.txt", "harmless");
  fs::path zips = root_ / "zips";
  fs::create_directories(zips);
  bool swapped = false;
  auto cancelled = [&] {
    if (!swapped && !Listing(zips).empty()) {
      fs::remove_all(src / "sub");
      fs::create_directory_symlink(host, src / "sub");
      swapped = true;
    }
    return false;
  };
  Status status = CreateZip(src, zips / "out.zip", cancelled);
  ASSERT_TRUE(swapped);
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("a folder on its way was replaced"));
  EXPECT_EQ(Listing(zips), std::vector<std::string>{});
}

INSTANTIATE_TEST_SUITE_P(LinkAndFifo, SwapTest, ::testing::Bool());

TEST_F(ZipWriteTest, CreateZipCanBeCancelled) {
  fs::path src = root_ / "src";
  WriteFile(src / "big.bin", std::string(1'000'000, 'b'));
  fs::path zips = root_ / "zips";
  // While listing.
  Status status = CreateZip(src, zips / "out.zip", [] { return true; });
  EXPECT_EQ(status.code(), Code::kCancelled);
  // While writing: once libzip's temporary file exists.
  fs::create_directories(zips);
  status = CreateZip(src, zips / "out.zip", [&] { return !Listing(zips).empty(); });
  EXPECT_EQ(status.code(), Code::kCancelled) << status.ToString();
  EXPECT_EQ(Listing(zips), std::vector<std::string>{});
}

// What does not compress is stored, what does is deflated: zipping random
// data (model weights, images) costs a copy, not a deflate.
TEST(CreateZipCompression, IncompressibleFilesAreStoredTextIsDeflated) {
  fs::path dir = fs::temp_directory_path() / ("cw-zip-store-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "src");
  {
    std::ofstream random(dir / "src/weights.bin", std::ios::binary);
    std::mt19937_64 rng(42);
    for (int i = 0; i < (1 << 20) / 8; ++i) {
      std::uint64_t v = rng();
      random.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
    std::ofstream text(dir / "src/log.txt");
    for (int i = 0; i < 20000; ++i) text << "line " << i % 10 << " of a very regular log\n";
    std::ofstream(dir / "src/small.txt") << "tiny";
  }
  ASSERT_TRUE(CreateZip(dir / "src", dir / "out.zip").ok());
  int error = 0;
  zip_t* za = zip_open((dir / "out.zip").c_str(), ZIP_RDONLY, &error);
  ASSERT_NE(za, nullptr);
  std::map<std::string, zip_stat_t> stats;
  for (zip_int64_t i = 0; i < zip_get_num_entries(za, 0); ++i) {
    zip_stat_t st;
    ASSERT_EQ(zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st), 0);
    stats[st.name] = st;
  }
  zip_discard(za);
  EXPECT_EQ(stats.at("weights.bin").comp_method, ZIP_CM_STORE);
  EXPECT_EQ(stats.at("log.txt").comp_method, ZIP_CM_DEFLATE);
  EXPECT_LT(stats.at("log.txt").comp_size * 10, stats.at("log.txt").size);
  EXPECT_EQ(stats.count("small.txt"), 1u);  // (libzip stores what deflate would grow)
  // Deflated at a fast level, not libzip's default 9: bits 1-2 of the local
  // header's flags are 10 ("fast") for levels 1 and 2.
  std::ifstream in(dir / "out.zip", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int log_flags = -1;
  for (std::size_t at = bytes.find("PK\3\4"); at != std::string::npos && at + 30 < bytes.size();
       at = bytes.find("PK\3\4", at + 4)) {
    auto u16 = [&](std::size_t o) {
      return static_cast<unsigned char>(bytes[at + o]) | static_cast<unsigned char>(bytes[at + o + 1]) << 8;
    };
    if (bytes.compare(at + 30, u16(26), "log.txt") == 0) log_flags = u16(6);
  }
  ASSERT_GE(log_flags, 0);
  EXPECT_EQ(log_flags & 0x6, 0x4);
  // And it all comes back.
  auto back = ExtractZip(dir / "out.zip", dir / "back");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(fs::file_size(dir / "back/weights.bin"), 1u << 20);
  fs::remove_all(dir);
}

// A full disk while zipping: IoError naming the zip by its file name, and no
// zip, whole or half, left behind.
TEST_F(ZipWriteTest, AFullDiskWhileZippingLeavesNoZip) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", std::string(100'000, 'a'));
  WriteFile(src / "b" / "c.bin", std::string(300'000, 'c'));
  fs::path zip = root_ / "zips" / "output.zip";
  for (int nth : {1, 2, 5}) {
    testing::TestEnv env;
    env.FailNthWrite(nth, ENOSPC);
    Status status = CreateZip(src, zip, {}, env);
    EXPECT_EQ(status.code(), Code::kIo) << nth << ": " << status.ToString();
    EXPECT_EQ(status.message(), "cannot write output.zip: no space left on the worker's disk")
        << nth;
    EXPECT_EQ(env.injected(), 1) << nth;
    EXPECT_EQ(Listing(root_ / "zips"), std::vector<std::string>{}) << nth;
  }
}

TEST_F(ZipWriteTest, AFailingWriteOfAnEmptyZipLeavesNone) {
  fs::create_directories(root_ / "src");
  testing::TestEnv env;
  env.FailWritesTo("*/output.zip.part-*", EIO);
  Status status = CreateZip(root_ / "src", root_ / "zips" / "output.zip", {}, env);
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("output.zip: Input/output error"));
  EXPECT_EQ(Listing(root_ / "zips"), std::vector<std::string>{});
}

TEST_F(ZipWriteTest, TheZipIsWrittenThroughTheEnv) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  WriteFile(src / "d" / "big.txt", std::string(500'000, 'z'));
  testing::TestEnv env;
  ASSERT_TRUE(CreateZip(src, root_ / "out.zip", {}, env).ok());
  EXPECT_GT(env.writes(), 0);
  ASSERT_TRUE(ExtractZip(root_ / "out.zip", root_ / "dest").ok());
  EXPECT_EQ(Listing(src), Listing(root_ / "dest"));
  EXPECT_EQ(ReadFile(root_ / "dest" / "d" / "big.txt"), std::string(500'000, 'z'));
}

}  // namespace
}  // namespace cw
