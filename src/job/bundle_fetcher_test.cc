#include "job/bundle_fetcher.h"

#include <atomic>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "archive/zip.h"
#include "common/abandon.h"
#include "common/files.h"
#include "job/test_fakes.h"
#include "storage/hash.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FakeStorage;

using testing::AwaitAbandoned;
using testing::AwaitFlag;
using testing::WriteFile;

class BundleFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-fetch-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    storage_ = std::make_unique<FakeStorage>(tmp_ / "store");
    cache_ = std::make_unique<BundleCache>(tmp_ / "cache", 1ull << 30);
    env_.base_dir = tmp_;
    root_ = tmp_ / "job";
    fs::create_directories(root_ / "bundles");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  std::string Bundle(const std::string& name, const std::map<std::string, std::string>& files) {
    std::string url = testing::StoreBundle(*storage_, tmp_ / "src", name, files);
    EXPECT_FALSE(url.empty()) << name;
    return url;
  }

  BundleFetcher Fetcher(std::function<void(const std::string&)> md5 = nullptr) {
    return BundleFetcher({*storage_, *cache_, cancel_, env_, root_, root_ / "bundles", 7, md5});
  }

  fs::path tmp_, root_;
  std::unique_ptr<FakeStorage> storage_;
  std::unique_ptr<BundleCache> cache_;
  CancelToken cancel_;
  JobEnvironment env_;
};

TEST_F(BundleFetcherTest, UnpacksEachIntoItsFolderAndHoistsAProgramsTopFolder) {
  std::string md5;
  BundleFetcher f = Fetcher([&md5](const std::string& sum) { md5 = sum; });
  std::string sub = Bundle("s.zip", {{"top/metadata", "command: true\n"}});
  std::string data = Bundle("d.zip", {{"train.csv", "1,2\n"}});
  Status st = f.FetchAll({{sub, "program", "submission", false},
                          {"", "ingestion_program", "ingestion program", false},
                          {data, "input_data", "input data", true}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(fs::exists(root_ / "program" / "metadata"));
  EXPECT_TRUE(fs::exists(root_ / "input_data" / "train.csv"));
  EXPECT_FALSE(fs::exists(root_ / "ingestion_program"));
  EXPECT_EQ(f.prepared_bytes(), 14u + 4u);
  auto expected = Md5FileHex(storage_->PathOf(sub), [] { return false; });
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(md5, *expected);
  EXPECT_GE(f.fetch_seconds(), 0);
  EXPECT_GE(f.unzip_seconds(), 0);
}

TEST_F(BundleFetcherTest, AMissingOrBrokenBundleSaysWhich) {
  BundleFetcher f = Fetcher();
  Status st = f.FetchAll({{"mem://nothing-here.zip", "program", "submission", false}});
  EXPECT_THAT(st.message(), HasSubstr("Could not download the submission"));
  WriteFile(storage_->PathOf("mem://broken.zip"), "this is not a zip at all");
  st = f.FetchAll({{"mem://broken.zip", "input/ref", "reference data", true}});
  EXPECT_EQ(st.code(), Code::kInvalidInput);
  EXPECT_THAT(st.message(), HasSubstr("The reference data could not be unpacked"));
}

TEST_F(BundleFetcherTest, TheBundlesDownloadAtOnce) {
  std::string score = Bundle("score.zip", {{"metadata", "command: true\n"}});
  std::string ref = Bundle("ref.zip", {{"truth.csv", "1\n"}});
  std::atomic<bool> program{false}, reference{false}, program_saw_reference{false},
      reference_saw_program{false};
  storage_->fetch_hook = [&](const std::string& url) {
    if (url.find("score.zip") != std::string::npos) {
      program = true;
      program_saw_reference = AwaitFlag(reference);
    } else if (url.find("ref.zip") != std::string::npos) {
      reference = true;
      reference_saw_program = AwaitFlag(program);
    }
  };
  BundleFetcher f = Fetcher();
  Status st = f.FetchAll({{score, "program", "scoring program", false},
                          {ref, "input/ref", "reference data", false}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(program_saw_reference);
  EXPECT_TRUE(reference_saw_program);
}

TEST_F(BundleFetcherTest, AFailedDownloadStopsTheOthersAndIsTheReason) {
  std::string input = Bundle("input.zip", {{"train.csv", "1\n"}});
  std::atomic<bool> abandoned{false};
  storage_->fetch_hook = [&](const std::string& url) {
    if (url.find("input.zip") == std::string::npos) return;
    abandoned = AwaitAbandoned();
  };
  BundleFetcher f = Fetcher();
  Status st = f.FetchAll({{"mem://missing.zip", "program", "submission", false},
                          {input, "input_data", "input data", true}});
  EXPECT_THAT(st.message(), HasSubstr("Could not download the submission"));
  EXPECT_TRUE(abandoned);
}

TEST_F(BundleFetcherTest, DatasetsComeFromTheCacheTheSecondTime) {
  std::string input = Bundle("input.zip", {{"train.csv", "1\n"}});
  ASSERT_TRUE(Fetcher().FetchAll({{input + "?sig=first", "input_data", "input data", true}}).ok());
  fs::remove_all(root_ / "input_data");
  ASSERT_TRUE(Fetcher().FetchAll({{input + "?sig=second", "input_data", "input data", true}}).ok());
  EXPECT_TRUE(fs::exists(root_ / "input_data" / "train.csv"));
  int fetches = 0;
  for (const auto& url : storage_->fetched) fetches += url.find("input.zip") != std::string::npos;
  EXPECT_EQ(fetches, 1);
}

TEST_F(BundleFetcherTest, ACancelledJobFetchesNothing) {
  cancel_.Cancel("revoked");
  Status st = Fetcher().FetchAll({{Bundle("s.zip", {{"a", "b"}}), "program", "submission", false}});
  EXPECT_EQ(st.code(), Code::kCancelled);
  EXPECT_TRUE(storage_->fetched.empty());
}

TEST_F(BundleFetcherTest, URLsAreRewritten) {
  std::string sub = Bundle("s.zip", {{"metadata", "command: true\n"}});
  env_.rewrite_url = [](const std::string& url) { return url + "?rewritten"; };
  ASSERT_TRUE(Fetcher().FetchAll({{sub, "program", "submission", false}}).ok());
  EXPECT_EQ(storage_->fetched, std::vector<std::string>{sub + "?rewritten"});
}

}  // namespace
}  // namespace cw
