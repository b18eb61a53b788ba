// The layout reader (zip_layout.h): what is refused before a byte is written,
// and what hand-made layouts are still read.
#include "archive/zip_layout.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "archive/zip.h"
#include "archive/zip_test_util.h"

namespace cw {
namespace {

using namespace zip_test;  // NOLINT: the shared fixture and zip makers
using ::testing::HasSubstr;

class ZipLayoutTest : public ZipTest {};

class RefusedNameTest : public ZipLayoutTest, public ::testing::WithParamInterface<std::string> {};

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

TEST_F(ZipLayoutTest, DotDotInsideTheFolderIsStillRefused) {
  // "a/../b" stays inside, but a name with ".." is never made by honest tools.
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"a/../b.txt", "x"}});
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
}

TEST_F(ZipLayoutTest, RefusesSymlinkEntry) {
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

TEST_F(ZipLayoutTest, RefusesEntryThroughLinkAlreadyInDest) {
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

TEST_F(ZipLayoutTest, RefusesEncryptedEntry) {
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

TEST_F(ZipLayoutTest, SkipsMacosxLitter) {
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

TEST_F(ZipLayoutTest, WindowsBackslashesBecomeFolders) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"dir\\sub\\file.txt", "win", false, 0, true}});
  fs::path dest = root_ / "dest";
  Result<ExtractStats> stats = ExtractZip(zip, dest);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ReadFile(dest / "dir" / "sub" / "file.txt"), "win");
  EXPECT_EQ(Mode(dest / "dir" / "sub" / "file.txt"), 0644u);
}

TEST_F(ZipLayoutTest, NotAZip) {
  WriteFile(root_ / "notes.txt", "hello, I am not a zip file at all, but long enough to look at\n");
  Result<ExtractStats> stats = ExtractZip(root_ / "notes.txt", root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("notes.txt is not a valid zip file ("));
  EXPECT_FALSE(LooksLikeZip(root_ / "notes.txt"));
}

TEST_F(ZipLayoutTest, TruncatedZip) {
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

TEST_F(ZipLayoutTest, EmptyFile) {
  WriteFile(root_ / "empty.zip", "");
  Result<ExtractStats> stats = ExtractZip(root_ / "empty.zip", root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput);
  EXPECT_THAT(stats.status().message(), HasSubstr("is not a valid zip file (the file is empty)"));
  EXPECT_FALSE(LooksLikeZip(root_ / "empty.zip"));
}

TEST_F(ZipLayoutTest, MissingFile) {
  Result<ExtractStats> stats = ExtractZip(root_ / "nope.zip", root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kNotFound);
  EXPECT_FALSE(LooksLikeZip(root_ / "nope.zip"));
}

TEST_F(ZipLayoutTest, ZipBombIsRefusedBeforeWritingAnything) {
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

TEST_F(ZipLayoutTest, SizeLimitMessageUsesTheSettingNameAndCompactGigabytes) {
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

TEST_F(ZipLayoutTest, TooManyEntries) {
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

TEST_F(ZipLayoutTest, HandMadeZipWithDataDescriptorsIsRead) {
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

TEST_F(ZipLayoutTest, HarmlessHeaderMismatchIsReadWhenEntriesDoNotOverlap) {
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

TEST_F(ZipLayoutTest, HandMadeZip64IsRead) {
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

TEST_F(ZipLayoutTest, NameTooLongToUnpackIsTheZipsFault) {
  // Not an IoError (disk trouble, the worker's side): the zip cannot be
  // unpacked anywhere.
  for (const std::string& name : {std::string(300, 'n'), std::string(4200, 'd').replace(200, 1, "/")}) {
    fs::path zip = root_ / "in.zip";
    MakeZip(zip, {{"ok.txt", "fine"}, {name, "long"}});
    fs::path dest = root_ / "dest";
    Result<ExtractStats> stats = ExtractZip(zip, dest);
    EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
    EXPECT_EQ(stats.status().message(), "zip entry '" + name + "' has a name too long to unpack");
    EXPECT_EQ(Listing(dest), std::vector<std::string>{});
  }
}

TEST_F(ZipLayoutTest, MissingZip64FieldIsAnInvalidZipNotAMissingFile) {
  // Sizes saying "see the ZIP64 field", and no such field: libzip answers
  // ZIP_ER_NOENT, which once came out as "no file at".
  std::string bytes = StoredZip({{"a.txt", "aaa"}});
  std::size_t central = CentralHeaders(bytes)[0];
  Set32(bytes, central + 20, 0xffffffffu);
  Set32(bytes, central + 24, 0xffffffffu);
  fs::path zip = root_ / "in.zip";
  WriteFile(zip, bytes);
  Result<ExtractStats> stats = ExtractZip(zip, root_ / "dest");
  EXPECT_EQ(stats.status().code(), Code::kInvalidInput) << stats.status().ToString();
  EXPECT_EQ(stats.status().message(), zip.string() + " is not a valid zip file (a header lacks a field it announces)");
}

TEST_F(ZipLayoutTest, OverlappingEntriesAreRefused) {
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

TEST_F(ZipLayoutTest, EntryPointingIntoAnotherEntrysDataIsRefused) {
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

// ---- The reader's own functions, without unpacking -----------------------

TEST(NormaliseEntryName, KeepsCleanNamesAndRefusesEscapes) {
  struct Case {
    std::string raw;
    std::string relative;  // "" with refused or skip
    bool skip = false;
    bool refused = false;
  };
  const std::vector<Case> cases = {
      {"a.txt", "a.txt"},
      {"dir/sub/f", "dir/sub/f"},
      {"./a//b/./c", "a/b/c"},
      {"dir\\win.txt", "dir/win.txt"},
      {"dir/", "dir"},
      {"./", ""},
      {"__MACOSX/._a", "", true},
      {"x/__MACOSX/a", "x/__MACOSX/a"},  // only at the top
      {"..", "", false, true},
      {"a/../b", "", false, true},
      {"/etc/passwd", "", false, true},
      {"\\server\\share", "", false, true},
      {"C:/Windows", "", false, true},
      {"z:evil", "", false, true},
      {"..\\evil", "", false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.raw);
    bool skip = true;
    Result<fs::path> got = NormaliseEntryName(c.raw, skip);
    if (c.refused) {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.status().code(), Code::kInvalidInput);
      EXPECT_EQ(got.status().message(), OutsideMessage(c.raw));
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(skip, c.skip);
    EXPECT_EQ(got->string(), c.relative);
  }
}

TEST_F(ZipLayoutTest, ReadZipLayoutFindsEachEntrysSpan) {
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64 ? "zip64" : "plain");
    fs::path zip = root_ / "in.zip";
    std::string bytes = StoredZip({{"one.txt", "hello", true}, {"two.txt", "world"}}, {}, zip64);
    WriteFile(zip, bytes);
    Result<ZipLayout> layout = ReadZipLayout(zip, {});
    ASSERT_TRUE(layout.ok()) << layout.status().ToString();
    EXPECT_EQ(layout->entries, 2u);
    ASSERT_EQ(layout->spans.size(), 2u);
    // Local header, name, data and a signed data descriptor (4 + 12 bytes).
    EXPECT_EQ(layout->spans[0].start, 0u);
    EXPECT_EQ(layout->spans[0].end, 30u + 7 + 5 + 16);
    EXPECT_EQ(layout->spans[1].start, layout->spans[0].end);
    EXPECT_EQ(layout->spans[1].end, layout->spans[1].start + 30 + 7 + 5);
    EXPECT_EQ(layout->spans[1].comp_size, 5u);
    EXPECT_EQ(layout->spans[1].index, 1u);
    EXPECT_EQ(layout->cd_start, layout->spans[1].end);
    EXPECT_EQ(layout->cd_end, CentralHeaders(bytes).back() + 46 + 7 + (zip64 ? 12 : 0));
  }
}

TEST_F(ZipLayoutTest, ReadZipLayoutChecksEveryOffsetAgainstTheFile) {
  fs::path zip = root_ / "in.zip";
  std::string good = StoredZip({{"a.txt", "aaa"}, {"b.txt", "bbb"}});
  std::vector<std::size_t> central = CentralHeaders(good);
  ASSERT_EQ(central.size(), 2u);
  const std::size_t eocd = good.size() - 22;
  struct Case {
    const char* what;
    std::size_t at;
    std::uint32_t value;
    const char* why;
  };
  const std::vector<Case> cases = {
      {"central directory offset", eocd + 16, 0xfffffff0u, "the central directory lies outside the file"},
      {"central directory size", eocd + 12, 0x7fffffffu, "the central directory lies outside the file"},
      {"local header offset", central[1] + 42, 0x00ffffffu, "it ends early"},
      {"local header offset inside a name", central[1] + 42, 31, "bad local header"},
      {"compressed size", central[1] + 20, 0x00ffffffu, "an entry runs past the end of the file"},
      {"a ZIP64 size without its extra field", central[0] + 24, 0xffffffffu,
       "a ZIP64 entry without its extra field"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::string bytes = good;
    Set32(bytes, c.at, c.value);
    WriteFile(zip, bytes);
    Result<ZipLayout> layout = ReadZipLayout(zip, {});
    ASSERT_FALSE(layout.ok());
    EXPECT_EQ(layout.status().code(), Code::kInvalidInput);
    EXPECT_EQ(layout.status().message(), zip.string() + " is not a valid zip file (" + c.why + ")");
  }
  // A name length running past the central directory.
  std::string bytes = good;
  bytes[central[1] + 28] = static_cast<char>(0xff);
  bytes[central[1] + 29] = static_cast<char>(0xff);
  WriteFile(zip, bytes);
  EXPECT_THAT(ReadZipLayout(zip, {}).status().message(), HasSubstr("a central directory header runs past its end"));
  // An entry count the central directory cannot hold.
  bytes = good;
  bytes[eocd + 10] = 100;
  WriteFile(zip, bytes);
  EXPECT_THAT(ReadZipLayout(zip, {}).status().message(),
              HasSubstr("the central directory is too short for its entries"));
  UnpackLimits limits;
  limits.max_entries = 50;
  EXPECT_EQ(ReadZipLayout(zip, limits).status().message(), "the zip has 100 entries, more than the 50 allowed");
}

TEST_F(ZipLayoutTest, PlanUnpackDecidesEveryEntryAndWritesNothing) {
  fs::path zip = root_ / "in.zip";
  MakeZip(zip, {{"top/", "", true, S_IFDIR | 0500},
                {"top/tool", "#!/bin/sh\n", false, S_IFREG | 04755},
                {"__MACOSX/._tool", "litter"},
                {"dir\\win.txt", "win", false, 0, true}});
  fs::path dest = root_ / "dest";
  fs::create_directories(dest);
  Result<ZipHandle> za = OpenCheckedZip(zip, {});
  ASSERT_TRUE(za.ok()) << za.status().ToString();
  Result<UnpackPlan> plan = PlanUnpack(za->get(), zip, fs::canonical(dest), {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->entries.size(), 3u);
  EXPECT_EQ(plan->entries[0].relative, "top");
  EXPECT_TRUE(plan->entries[0].is_dir);
  EXPECT_EQ(plan->entries[0].mode, 0700u);
  EXPECT_EQ(plan->entries[1].relative, "top/tool");
  EXPECT_EQ(plan->entries[1].mode, 0755u);  // set-uid dropped
  EXPECT_EQ(plan->entries[1].size, 10u);
  EXPECT_EQ(plan->entries[2].name, "dir\\win.txt");
  EXPECT_EQ(plan->entries[2].relative, "dir/win.txt");
  EXPECT_EQ(plan->entries[2].mode, 0644u);
  EXPECT_EQ(plan->declared_bytes, 10u + 3);  // the litter does not count
  EXPECT_EQ(Listing(dest), std::vector<std::string>{});

  UnpackLimits limits;
  limits.max_bytes = 12;
  plan = PlanUnpack(za->get(), zip, fs::canonical(dest), limits);
  EXPECT_EQ(plan.status().code(), Code::kInvalidInput);
  EXPECT_THAT(plan.status().message(), HasSubstr(TooBigMessage(limits) + "; its entries add up to "));
  limits.max_bytes = 13;
  EXPECT_TRUE(PlanUnpack(za->get(), zip, fs::canonical(dest), limits).ok());
}

TEST_F(ZipLayoutTest, LooksLikeZipReadsOnlyTheSignature) {
  WriteFile(root_ / "local", std::string("PK\3\4") + "anything");
  WriteFile(root_ / "empty_archive", std::string("PK\5\6"));
  WriteFile(root_ / "central", std::string("PK\1\2") + "anything");
  WriteFile(root_ / "short", "PK");
  EXPECT_TRUE(LooksLikeZip(root_ / "local"));
  EXPECT_TRUE(LooksLikeZip(root_ / "empty_archive"));
  EXPECT_FALSE(LooksLikeZip(root_ / "central"));
  EXPECT_FALSE(LooksLikeZip(root_ / "short"));
}

}  // namespace
}  // namespace cw
