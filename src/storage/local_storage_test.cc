#include "storage/local_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class LocalStorageTest : public testing_util::TempDirTest {
 protected:
  std::vector<std::string> Names() {
    std::vector<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(root_)) out.push_back(fs::relative(e.path(), root_).string());
    std::sort(out.begin(), out.end());
    return out;
  }
  LocalStorage storage_;
};

TEST(LocalPathFromUrlTest, Forms) {
  EXPECT_EQ(*LocalPathFromUrl("/data/a.zip"), fs::path("/data/a.zip"));
  EXPECT_EQ(*LocalPathFromUrl("file:///data/a.zip"), fs::path("/data/a.zip"));
  EXPECT_EQ(*LocalPathFromUrl("FILE:///data/a.zip"), fs::path("/data/a.zip"));
  EXPECT_EQ(*LocalPathFromUrl("file://localhost/data/a.zip"), fs::path("/data/a.zip"));
  EXPECT_EQ(*LocalPathFromUrl("file:/data/a.zip"), fs::path("/data/a.zip"));
  EXPECT_EQ(*LocalPathFromUrl("file:///my%20data/%C3%A9t%C3%A9%3F.zip"), fs::path("/my data/été?.zip"));
  EXPECT_EQ(*LocalPathFromUrl("file:///data/a.zip?sig=1#frag"), fs::path("/data/a.zip"));
  // Plain paths are taken as they are, '%' included.
  EXPECT_EQ(*LocalPathFromUrl("/data/100%25.zip"), fs::path("/data/100%25.zip"));
}

TEST(LocalPathFromUrlTest, Refusals) {
  Result<fs::path> https = LocalPathFromUrl("https://example.com/a.zip");
  EXPECT_EQ(https.status().code(), Code::kInvalidInput);
  EXPECT_EQ(https.status().message(), "LocalStorage cannot fetch https URLs");
  EXPECT_EQ(LocalPathFromUrl("s3://b/k", "store to").status().message(), "LocalStorage cannot store to s3 URLs");
  EXPECT_EQ(LocalPathFromUrl("relative/a.zip").status().code(), Code::kInvalidInput);
  EXPECT_EQ(LocalPathFromUrl("").status().code(), Code::kInvalidInput);
  EXPECT_EQ(LocalPathFromUrl("file://otherhost/a.zip").status().code(), Code::kInvalidInput);
  EXPECT_EQ(LocalPathFromUrl("file://").status().code(), Code::kInvalidInput);
  EXPECT_EQ(LocalPathFromUrl("file:///a%2").status().code(), Code::kInvalidInput);
  EXPECT_EQ(LocalPathFromUrl("file:///a%zz").status().code(), Code::kInvalidInput);
  EXPECT_EQ(LocalPathFromUrl("file:///a%00b").status().code(), Code::kInvalidInput);
}

TEST_F(LocalStorageTest, FetchCopiesFromPathAndFileUrl) {
  WriteFile(root_ / "src dir" / "a.zip", "zipbytes");
  ASSERT_TRUE(storage_.Fetch((root_ / "src dir" / "a.zip").string(), root_ / "out1").ok());
  EXPECT_EQ(ReadFile(root_ / "out1"), "zipbytes");
  std::string url = "file://" + (root_ / "src%20dir" / "a.zip").string();
  Status status = storage_.Fetch(url, root_ / "out2");
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ReadFile(root_ / "out2"), "zipbytes");
}

TEST_F(LocalStorageTest, FetchReplacesExistingDest) {
  WriteFile(root_ / "a", "new");
  WriteFile(root_ / "dest", "old content that is longer");
  ASSERT_TRUE(storage_.Fetch((root_ / "a").string(), root_ / "dest").ok());
  EXPECT_EQ(ReadFile(root_ / "dest"), "new");
}

TEST_F(LocalStorageTest, FetchMultiChunkFile) {
  std::string big(300 * 1024 + 3, 'x');
  big[12345] = 'y';
  WriteFile(root_ / "big", big);
  ASSERT_TRUE(storage_.Fetch((root_ / "big").string(), root_ / "copy").ok());
  EXPECT_TRUE(ReadFile(root_ / "copy") == big);
}

TEST_F(LocalStorageTest, FetchTellsProgressAfterEachChunkOfTheFileSize) {
  const std::uint64_t size = 300 * 1024 + 3;
  WriteFile(root_ / "big", std::string(size, 'x'));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  ASSERT_TRUE(storage_
                  .Fetch((root_ / "big").string(), root_ / "copy",
                         [&](std::uint64_t done, std::uint64_t total) { calls.push_back({done, total}); })
                  .ok());
  ASSERT_EQ(calls.size(), 5u);  // four 64 KiB chunks and the rest
  using Call = std::pair<std::uint64_t, std::uint64_t>;
  EXPECT_EQ(calls[0], Call(64 * 1024, size));
  EXPECT_EQ(calls.back(), Call(size, size));
}

TEST_F(LocalStorageTest, FetchMissingIsNotFoundAndLeavesNothing) {
  Status status = storage_.Fetch((root_ / "nope.zip").string(), root_ / "dest");
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_EQ(status.message(), "no file at " + (root_ / "nope.zip").string());
  EXPECT_EQ(Names(), std::vector<std::string>{});
}

TEST_F(LocalStorageTest, FetchOtherSchemeIsInvalidInput) {
  Status status = storage_.Fetch("https://example.com/a.zip", root_ / "dest");
  EXPECT_EQ(status.code(), Code::kInvalidInput);
  EXPECT_EQ(status.message(), "LocalStorage cannot fetch https URLs");
}

TEST_F(LocalStorageTest, FetchOntoItselfKeepsTheFile) {
  WriteFile(root_ / "a", "content");
  ASSERT_TRUE(storage_.Fetch((root_ / "a").string(), root_ / "a").ok());
  EXPECT_EQ(ReadFile(root_ / "a"), "content");
}

TEST_F(LocalStorageTest, PutCreatesParentsAndLeavesNoTemp) {
  WriteFile(root_ / "result.zip", "results");
  std::string url = "file://" + (root_ / "out" / "deep" / "r.zip").string();
  Status status = storage_.Put(url, root_ / "result.zip", "application/zip");
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ReadFile(root_ / "out" / "deep" / "r.zip"), "results");
  EXPECT_EQ(Names(), (std::vector<std::string>{"out", "out/deep", "out/deep/r.zip", "result.zip"}));
}

TEST_F(LocalStorageTest, PutMissingSourceIsNotFound) {
  Status status = storage_.Put((root_ / "x").string(), root_ / "nope", "text/plain");
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

TEST_F(LocalStorageTest, PutOtherSchemeIsInvalidInput) {
  WriteFile(root_ / "a", "a");
  Status status = storage_.Put("https://example.com/up", root_ / "a", "text/plain");
  EXPECT_EQ(status.code(), Code::kInvalidInput);
  EXPECT_THAT(status.message(), HasSubstr("https"));
}

}  // namespace
}  // namespace cw
