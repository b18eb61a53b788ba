#include "archive/zip.h"
#include <random>

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
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


// ---- Unpack limits and hostile layouts ----------------------------------

void Put16(std::string& s, std::uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
void Put32(std::string& s, std::uint32_t v) {
  Put16(s, v & 0xffff);
  Put16(s, v >> 16);
}
void Set32(std::string& s, std::size_t at, std::uint32_t v) {
  std::string le;
  Put32(le, v);
  s.replace(at, 4, le);
}
std::uint32_t Crc32(const std::string& data) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
// Offsets of every central directory header ("PK\1\2") in a zip's bytes.
std::vector<std::size_t> CentralHeaders(const std::string& zip) {
  std::vector<std::size_t> out;
  for (std::size_t at = zip.find("PK\1\2"); at != std::string::npos; at = zip.find("PK\1\2", at + 1)) {
    out.push_back(at);
  }
  return out;
}

struct RawEntry {
  std::string name;
  std::string data;
  bool descriptor = false;  // sizes and CRC in a data descriptor after the data (flag bit 3)
};

// A zip of stored entries written byte by byte, so that the layout can be
// anything. `aliases` adds central directory entries, each a copy of the
// entry with that index under another name, pointing to the same local header.
// `zip64` writes the ZIP64 end records and puts every local header offset in
// a ZIP64 extra field, as writers do for big archives.
void Put64(std::string& s, std::uint64_t v) {
  Put32(s, static_cast<std::uint32_t>(v));
  Put32(s, static_cast<std::uint32_t>(v >> 32));
}
std::string StoredZip(const std::vector<RawEntry>& entries,
                      const std::vector<std::pair<std::size_t, std::string>>& aliases = {},
                      bool zip64 = false) {
  std::string out;
  std::vector<std::string> central;
  for (const RawEntry& e : entries) {
    std::uint32_t offset = static_cast<std::uint32_t>(out.size());
    std::uint32_t crc = Crc32(e.data);
    std::uint32_t size = static_cast<std::uint32_t>(e.data.size());
    std::uint16_t flags = e.descriptor ? 8 : 0;
    out += "PK\3\4";
    Put16(out, 10);
    Put16(out, flags);
    Put16(out, 0);  // stored
    Put32(out, 0);  // time, date
    Put32(out, e.descriptor ? 0 : crc);
    Put32(out, e.descriptor ? 0 : size);
    Put32(out, e.descriptor ? 0 : size);
    Put16(out, static_cast<std::uint32_t>(e.name.size()));
    Put16(out, 0);
    out += e.name + e.data;
    if (e.descriptor) {
      out += "PK\7\10";
      Put32(out, crc);
      Put32(out, size);
      Put32(out, size);
    }
    std::string c = "PK\1\2";
    Put16(c, 0x031e);  // made on Unix
    Put16(c, 10);
    Put16(c, flags);
    Put16(c, 0);
    Put32(c, 0);
    Put32(c, crc);
    Put32(c, size);
    Put32(c, size);
    Put16(c, static_cast<std::uint32_t>(e.name.size()));
    Put16(c, zip64 ? 12 : 0);  // extra length
    Put16(c, 0);
    Put16(c, 0);
    Put16(c, 0);
    Put32(c, static_cast<std::uint32_t>(S_IFREG | 0644) << 16);
    Put32(c, zip64 ? 0xffffffffu : offset);
    c += e.name;
    if (zip64) {
      Put16(c, 1);
      Put16(c, 8);
      Put64(c, offset);
    }
    central.push_back(c);
  }
  for (const auto& [index, name] : aliases) {
    const std::string& of = central[index];
    std::size_t old_name = static_cast<std::uint8_t>(of[28]);
    std::string c = of.substr(0, 46) + name + of.substr(46 + old_name);
    c[28] = static_cast<char>(name.size());  // name length (names under 256 bytes)
    c[29] = 0;
    central.push_back(c);
  }
  std::uint32_t cd_offset = static_cast<std::uint32_t>(out.size());
  for (const std::string& c : central) out += c;
  std::uint32_t cd_size = static_cast<std::uint32_t>(out.size()) - cd_offset;
  if (zip64) {
    std::uint64_t record = out.size();
    out += "PK\6\6";
    Put64(out, 44);
    Put16(out, 45);
    Put16(out, 45);
    Put32(out, 0);
    Put32(out, 0);
    Put64(out, central.size());
    Put64(out, central.size());
    Put64(out, cd_size);
    Put64(out, cd_offset);
    out += "PK\6\7";
    Put32(out, 0);
    Put64(out, record);
    Put32(out, 1);
    out += "PK\5\6";
    Put32(out, 0);
    Put16(out, 0xffff);
    Put16(out, 0xffff);
    Put32(out, 0xffffffffu);
    Put32(out, 0xffffffffu);
    Put16(out, 0);
    return out;
  }
  out += "PK\5\6";
  Put32(out, 0);
  Put16(out, static_cast<std::uint32_t>(central.size()));
  Put16(out, static_cast<std::uint32_t>(central.size()));
  Put32(out, cd_size);
  Put32(out, cd_offset);
  Put16(out, 0);
  return out;
}

TEST_F(ZipTest, ZipBombIsRefusedBeforeWritingAnything) {
  fs::path zip = root_ / "bomb.zip";
  MakeZip(zip, {{"zeros.bin", std::string(20'000'000, '\0')}});
  ASSERT_LT(fs::file_size(zip), 1'000'000u);  // it really compresses
  UnpackLimits limits;
  limits.max_bytes = 1'000'000;
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest, limits);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_EQ(stats.status().message(),
            "the zip unpacks to more than 0.001 GB (MAX_UNPACKED_SIZE_GB=0.001); its entries add up to 0.02 GB");
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
}

TEST_F(ZipTest, SizeLimitMessageUsesTheSettingNameAndCompactGigabytes) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a.bin", std::string(3'000'000, 'a')}});
  UnpackLimits limits;
  limits.max_bytes = 2'250'000;
  limits.bytes_setting = "MAX_BUNDLE_GB";
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest", limits);
  EXPECT_THAT(stats.status().message(), HasSubstr("more than 0.00225 GB (MAX_BUNDLE_GB=0.00225); its entries add up to 0.003 GB"));
  limits.max_bytes = 3'000'000;  // exactly the size: allowed
  stats = ExtractZip(zip, root_ / "dest", limits);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->bytes, 3'000'000u);
}

TEST_F(ZipTest, LyingSizeInTheHeadersIsStoppedWhileWriting) {
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

TEST_F(ZipTest, TooManyEntries) {
  fs::path zip = root_ / "many.zip";
  MakeZip(zip, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d/", "", true}, {"d/e", "5"}});
  UnpackLimits limits;
  limits.max_entries = 4;
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest, limits);
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_EQ(stats.status().message(), "the zip has 5 entries, more than the 4 allowed");
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
  limits.max_entries = 5;
  stats = ExtractZip(zip, dest, limits);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files, 4u);
}

TEST_F(ZipTest, HandMadeZipWithDataDescriptorsIsRead) {
  // The layout check must not take a descriptor for an overlap.
  fs::path zip = root_ / "in.zip";
  WriteFile(zip, StoredZip({{"one.txt", "hello", true}, {"two.txt", "world", true}, {"three.txt", "!", false}}));
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(dest / "one.txt"), "hello");
  EXPECT_EQ(ReadFile(dest / "two.txt"), "world");
  EXPECT_EQ(ReadFile(dest / "three.txt"), "!");
}

TEST_F(ZipTest, HarmlessHeaderMismatchIsReadWhenEntriesDoNotOverlap) {
  // A local header whose time differs from the central one fails libzip's
  // strict check; our own layout check lets it through.
  std::string bytes = StoredZip({{"a.txt", "aaa"}, {"b.txt", "bbb"}});
  bytes[10] = 0x21;  // first local header's modification time
  fs::path zip = root_ / "in.zip";
  WriteFile(zip, bytes);
  int err = 0;
  zip_t* strict = zip_open(zip.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (strict != nullptr) zip_discard(strict);
  ASSERT_EQ(strict, nullptr);
  ASSERT_EQ(err, ZIP_ER_INCONS);
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(dest / "a.txt"), "aaa");
  EXPECT_EQ(ReadFile(dest / "b.txt"), "bbb");
}

TEST_F(ZipTest, HandMadeZip64IsRead) {
  fs::path zip = root_ / "in.zip";
  WriteFile(zip, StoredZip({{"one.txt", "hello", true}, {"two.txt", "world"}}, {}, true));
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(dest / "one.txt"), "hello");
  EXPECT_EQ(ReadFile(dest / "two.txt"), "world");

  // Overlapping: refused (libzip 1.7.3 already gives up on a ZIP64 archive
  // failing its consistency check, before our check runs).
  WriteFile(zip, StoredZip({{"one.txt", "hello"}, {"two.txt", "world"}}, {{1, "again.txt"}}, true));
  stats = ExtractZip(zip, root_ / "dest2");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
  EXPECT_EQ(Listing(root_ / "dest2"), std::vector<std::string>{});
}

TEST_F(ZipTest, OverlappingEntriesAreRefused) {
  // Three central directory entries for one local header: the non-recursive
  // zip bomb. (libzip itself refuses duplicate names, so the copies are renamed.)
  fs::path zip = root_ / "overlap.zip";
  WriteFile(zip, StoredZip({{"kernel.bin", std::string(1000, 'k')}, {"other.txt", "x"}},
                           {{0, "copy1.bin"}, {0, "copy2.bin"}}));
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("the zip's entries overlap; it is not a valid archive"));
  EXPECT_THAT(stats.status().message(), HasSubstr("'kernel.bin'"));
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});
}

TEST_F(ZipTest, EntryPointingIntoAnotherEntrysDataIsRefused) {
  // The second central entry is patched to start inside the first one's data.
  fs::path zip = root_ / "overlap.zip";
  std::string inner = StoredZip({{"inner.txt", "inner"}});
  std::string bytes = StoredZip({{"outer.bin", inner.substr(0, inner.find("PK\1\2"))}, {"inner.txt", "inner"}});
  std::vector<std::size_t> central = CentralHeaders(bytes);
  ASSERT_EQ(central.size(), 2u);
  Set32(bytes, central[1] + 42, 30 + 9);  // where outer.bin's data (a local header) starts
  WriteFile(zip, bytes);
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
  EXPECT_THAT(stats.status().message(), HasSubstr("the zip's entries overlap"));
}

TEST_F(ZipTest, FreeSpaceReserveIsChecked) {
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

TEST_F(ZipTest, CancelStopsUnpackingAndRemovesWhatWasWritten) {
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

// ---- Zipping a hostile folder ---------------------------------------------

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

TEST_F(ZipTest, CreateZipDropsSetuidSetgidAndStickyBits) {
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

TEST_F(ZipTest, CreateZipLeavesLinkTargetsOut) {
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

TEST_F(ZipTest, CreateZipSkipsFifoWithoutWaiting) {
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

TEST_F(ZipTest, CreateZipKeepsAFileOfModeZero) {
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
class SwapTest : public ZipTest, public ::testing::WithParamInterface<bool> {};

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

TEST_F(ZipTest, FolderSwappedForLinkWhileZippingIsNotFollowed) {
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

TEST_F(ZipTest, CreateZipCanBeCancelled) {
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

}  // namespace
}  // namespace cw
