#include "archive/zip.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cw {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct Entry {
  std::string name;
  std::string content;
  bool is_dir = false;
  // Unix file type and permission bits; 0 leaves libzip's default attributes.
  mode_t unix_mode = 0;
  bool dos = false;  // recorded as made on MS-DOS/Windows
};

class ZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cw_zip_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    // Undo read-only modes some tests set, so the cleanup can proceed.
    for (auto it = fs::recursive_directory_iterator(root_, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_symlink()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(root_, ec);
  }

  static void WriteFile(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << content;
  }

  static std::string ReadFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static mode_t Mode(const fs::path& path) {
    struct stat st;
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  // Builds a zip with libzip directly, so names and attributes can be anything.
  static void MakeZip(const fs::path& path, const std::vector<Entry>& entries) {
    int err = 0;
    zip_t* za = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    ASSERT_NE(za, nullptr) << err;
    for (const Entry& e : entries) {
      zip_int64_t index;
      if (e.is_dir) {
        index = zip_dir_add(za, e.name.c_str(), 0);
      } else {
        zip_source_t* src = zip_source_buffer(za, e.content.data(), e.content.size(), 0);
        ASSERT_NE(src, nullptr);
        index = zip_file_add(za, e.name.c_str(), src, 0);
        if (index < 0) zip_source_free(src);
      }
      ASSERT_GE(index, 0) << e.name << ": " << zip_strerror(za);
      if (e.dos) {
        ASSERT_EQ(zip_file_set_external_attributes(za, index, 0, ZIP_OPSYS_DOS, 0), 0);
      } else if (e.unix_mode != 0) {
        ASSERT_EQ(zip_file_set_external_attributes(za, index, 0, ZIP_OPSYS_UNIX,
                                                   static_cast<zip_uint32_t>(e.unix_mode) << 16),
                  0);
      }
    }
    ASSERT_EQ(zip_close(za), 0) << zip_strerror(za);
  }

  // Every path under `dir`, relative, sorted.
  static std::vector<std::string> Listing(const fs::path& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      out.push_back(fs::relative(e.path(), dir).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path root_;
};

TEST_F(ZipTest, RoundTripKeepsTreeEmptyDirsZeroByteFilesAndExecBit) {
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

TEST_F(ZipTest, RoundTripOfMultiChunkFile) {
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

TEST_F(ZipTest, EmptyFolderGivesValidEmptyZip) {
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

TEST_F(ZipTest, CreateZipSkipsSymlinksWithoutFollowingThem) {
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

TEST_F(ZipTest, CreateZipIntoTheFolderItselfDoesNotIncludeTheOldZip) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  ASSERT_TRUE(CreateZip(src, src / "out.zip").ok());
  ASSERT_TRUE(CreateZip(src, src / "out.zip").ok());
  fs::path dest = root_ / "dest";
  ASSERT_TRUE(ExtractZip(src / "out.zip", dest).ok());
  EXPECT_EQ(Listing(dest), std::vector<std::string>{"a.txt"});
}

TEST_F(ZipTest, CreateZipOfMissingFolderLeavesNoFile) {
  fs::path zip = root_ / "out.zip";
  Status status = CreateZip(root_ / "nope", zip);
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_EQ(Listing(root_), std::vector<std::string>{});
}

TEST_F(ZipTest, CreateZipWhereNoFolderCanBeMadeIsIoError) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", "a");
  WriteFile(root_ / "blocker", "a file where a folder should be");
  Status status = CreateZip(src, root_ / "blocker" / "out.zip");
  EXPECT_EQ(status.code(), Code::kIo) << status.ToString();
  EXPECT_EQ(Listing(root_), (std::vector<std::string>{"blocker", "src", "src/a.txt"}));
}

TEST_F(ZipTest, CreateZipFailureLeavesNoHalfZip) {
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

class RefusedNameTest : public ZipTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(RefusedNameTest, RefusesAndWritesNothing) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"ok.txt", "fine"}, {GetParam(), "evil"}});
  fs::path dest = root_ / "work" / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("zip entry '" + GetParam() + "'"));
  EXPECT_THAT(stats.status().message(), HasSubstr("points outside the folder it is unpacked into"));
  // Nothing outside dest, and (entries are all checked first) nothing inside either.
  EXPECT_EQ(Listing(root_), (std::vector<std::string>{"in.zip", "work", "work/dest"}));
  EXPECT_FALSE(fs::exists("/evil"));
}

INSTANTIATE_TEST_SUITE_P(EvilNames, RefusedNameTest,
                         ::testing::Values("../evil", "/abs", "a/../../evil", "C:\\evil", "c:/evil",
                                           "a\\..\\..\\evil", "a/b/../../../evil", "..", "\\abs"));

TEST_F(ZipTest, DotDotInsideTheFolderIsStillRefused) {
  // "a/../b" stays inside, but a name with ".." is never made by honest tools.
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a/../b.txt", "x"}});
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
}

TEST_F(ZipTest, RefusesSymlinkEntry) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"ok.txt", "fine"}, {"link", "/etc/passwd", false, S_IFLNK | 0777}});
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("'link'"));
  EXPECT_THAT(stats.status().message(), HasSubstr("symbolic link"));
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
}

TEST_F(ZipTest, RefusesEntryThroughLinkAlreadyInDest) {
  fs::path outside = root_ / "outside";
  fs::create_directories(outside);
  fs::path dest = root_ / "dest";
  fs::create_directories(dest);
  fs::create_directory_symlink(outside, dest / "link");
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"link/evil.txt", "evil"}});
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("points outside"));
  EXPECT_EQ(Listing(outside), std::vector<std::string>{});
}

TEST_F(ZipTest, DoesNotWriteThroughFileLinkAlreadyInDest) {
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

TEST_F(ZipTest, SkipsMacosxLitter) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"__MACOSX/", "", true},
                {"__MACOSX/._data.csv", "resource fork"},
                {"__MACOSX/sub/._x", "more"},
                {"data.csv", "a,b\n"}});
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 1u);
  EXPECT_EQ(Listing(dest), std::vector<std::string>{"data.csv"});
}

TEST_F(ZipTest, WindowsBackslashesBecomeFolders) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"dir\\sub\\file.txt", "win", false, 0, true}});
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(dest / "dir" / "sub" / "file.txt"), "win");
  EXPECT_EQ(Mode(dest / "dir" / "sub" / "file.txt"), 0644u);
}

TEST_F(ZipTest, NestedDirsAndPermissionDefaults) {
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

TEST_F(ZipTest, FileInTheWayOfAFolderIsInvalidInput) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a", "file"}, {"a/b.txt", "x"}});
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
}

TEST_F(ZipTest, RefusesEncryptedEntry) {
  fs::path zip = root_ / "in.zip";
  {
    int err = 0;
    zip_t* za = zip_open(zip.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    ASSERT_NE(za, nullptr);
    static const char kData[] = "secret";
    zip_source_t* src = zip_source_buffer(za, kData, sizeof kData - 1, 0);
    zip_int64_t index = zip_file_add(za, "secret.txt", src, 0);
    ASSERT_GE(index, 0);
    if (zip_file_set_encryption(za, index, ZIP_EM_AES_256, "pw") != 0) {
      zip_discard(za);
      GTEST_SKIP() << "this libzip cannot encrypt";
    }
    ASSERT_EQ(zip_close(za), 0);
  }
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("'secret.txt'"));
  EXPECT_THAT(stats.status().message(), HasSubstr("encrypted"));
}

TEST_F(ZipTest, NotAZip) {
  WriteFile(root_ / "notes.txt", "hello, I am not a zip file at all, but long enough to look at\n");
  Result<ExtractStats> stats = ExtractZip(root_ / "notes.txt", root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("notes.txt is not a valid zip file ("));
  EXPECT_FALSE(LooksLikeZip(root_ / "notes.txt"));
}

TEST_F(ZipTest, TruncatedZip) {
  fs::path src = root_ / "src";
  WriteFile(src / "a.txt", std::string(10000, 'a'));
  WriteFile(src / "b.txt", "bbbb");
  fs::path zip = root_ / "out.zip";
  ASSERT_TRUE(CreateZip(src, zip).ok());
  std::string bytes = ReadFile(zip);
  WriteFile(zip, bytes.substr(0, bytes.size() / 2));
  EXPECT_TRUE(LooksLikeZip(zip));  // the start is intact
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("is not a valid zip file ("));
}

TEST_F(ZipTest, CorruptDataIsCaught) {
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

TEST_F(ZipTest, EmptyFile) {
  WriteFile(root_ / "empty.zip", "");
  Result<ExtractStats> stats = ExtractZip(root_ / "empty.zip", root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("is not a valid zip file (the file is empty)"));
  EXPECT_FALSE(LooksLikeZip(root_ / "empty.zip"));
}

TEST_F(ZipTest, MissingFile) {
  Result<ExtractStats> stats = ExtractZip(root_ / "nope.zip", root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kNotFound);
  EXPECT_FALSE(LooksLikeZip(root_ / "nope.zip"));
}

}  // namespace
}  // namespace cw
