#include "storage/bundle_cache.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/local_storage.h"
#include "storage/test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Serves canned contents and counts fetches.
class FakeStorage : public Storage {
 public:
  void Set(const std::string& url_without_query, std::string content) {
    std::lock_guard<std::mutex> lock(mu_);
    contents_[url_without_query] = std::move(content);
  }
  void FailWith(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  int fetches() const { return fetches_; }

  Status Fetch(const std::string& url, const fs::path& dest,
               const TransferProgressFn& = {}) override {
    ++fetches_;
    std::string content;
    Status fail;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = contents_.find(url.substr(0, url.find('?')));
      if (it == contents_.end()) return NotFound("no object at " + url);
      content = it->second;
      fail = fail_;
    }
    std::ofstream out(dest, std::ios::binary);
    if (!fail.ok()) {
      // A download that breaks off half way.
      out << content.substr(0, content.size() / 2);
      return fail;
    }
    out << content;
    return Status::Ok();
  }
  Status Put(const std::string&, const fs::path&, const std::string&) override {
    return Internal("not used");
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> contents_;
  Status fail_;
  std::atomic<int> fetches_{0};
};

class BundleCacheTest : public testing_util::TempDirTest {
 protected:
  fs::path CacheDir() { return root_ / "cache"; }

  std::vector<std::string> CacheNames() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(CacheDir())) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  void SetAge(const fs::path& path, std::chrono::seconds age) {
    fs::last_write_time(path, fs::file_time_type::clock::now() - age);
  }

  FakeStorage storage_;
};

const char kUrlA[] = "https://example.com/a.zip";
const char kUrlB[] = "https://example.com/b.zip";
const char kUrlC[] = "https://example.com/c.zip";

TEST(BundleCacheKeyTest, MatchesPythonWorker) {
  // printf %s https://example.com/a.zip | sha256sum
  const std::string expected = "1d9defa430c34a6c6819693fcf47e7254abc5a2b5e00f6e8d37b4143f1929930";
  EXPECT_EQ(BundleCache::KeyFor("https://example.com/a.zip"), expected);
  EXPECT_EQ(BundleCache::KeyFor("https://example.com/a.zip?X-Amz-Signature=abc&X-Amz-Expires=60"), expected);
  EXPECT_EQ(BundleCache::KeyFor("https://example.com/a.zip?"), expected);
  EXPECT_NE(BundleCache::KeyFor("https://example.com/b.zip"), expected);
}

TEST(CacheBytesFromGbTest, DecimalGigabytes) {
  EXPECT_EQ(CacheBytesFromGb(10), 10'000'000'000u);
  EXPECT_EQ(CacheBytesFromGb(0.5), 500'000'000u);
  EXPECT_EQ(CacheBytesFromGb(1e-9), 1u);
  EXPECT_EQ(CacheBytesFromGb(0), 0u);
  EXPECT_EQ(CacheBytesFromGb(-3), 0u);
  EXPECT_EQ(CacheBytesFromGb(std::nan("")), 0u);
  EXPECT_EQ(CacheBytesFromGb(1e30), std::numeric_limits<std::uint64_t>::max());
}

TEST_F(BundleCacheTest, HitAfterMissDoesNotFetchAgain) {
  storage_.Set(kUrlA, "bundle a");
  BundleCache cache(CacheDir(), 1'000'000);
  Result<fs::path> first = cache.Get(kUrlA, storage_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, CacheDir() / BundleCache::KeyFor(kUrlA));
  EXPECT_EQ(ReadFile(*first), "bundle a");
  Result<fs::path> second = cache.Get(kUrlA, storage_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(storage_.fetches(), 1);
  EXPECT_EQ(cache.SizeBytes(), 8u);
  EXPECT_EQ(CacheNames(), std::vector<std::string>{BundleCache::KeyFor(kUrlA)});
}

TEST_F(BundleCacheTest, QueryStringsDoNotMatter) {
  storage_.Set(kUrlA, "bundle a");
  BundleCache cache(CacheDir(), 1'000'000);
  ASSERT_TRUE(cache.Get(std::string(kUrlA) + "?sig=1", storage_).ok());
  ASSERT_TRUE(cache.Get(std::string(kUrlA) + "?sig=2&exp=3", storage_).ok());
  ASSERT_TRUE(cache.Get(kUrlA, storage_).ok());
  EXPECT_EQ(storage_.fetches(), 1);
}

TEST_F(BundleCacheTest, EvictsLeastRecentlyUsedByMtime) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  storage_.Set(kUrlB, std::string(100, 'b'));
  storage_.Set(kUrlC, std::string(100, 'c'));
  BundleCache cache(CacheDir(), 250);
  fs::path a = *cache.Get(kUrlA, storage_);
  fs::path b = *cache.Get(kUrlB, storage_);
  // a was fetched first but used more recently than b.
  SetAge(a, 1h);
  SetAge(b, 2h);
  fs::path c = *cache.Get(kUrlC, storage_);
  EXPECT_TRUE(fs::exists(a));
  EXPECT_FALSE(fs::exists(b));
  EXPECT_TRUE(fs::exists(c));
  EXPECT_EQ(cache.SizeBytes(), 200u);
}

TEST_F(BundleCacheTest, HitRefreshesRecency) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  storage_.Set(kUrlB, std::string(100, 'b'));
  storage_.Set(kUrlC, std::string(100, 'c'));
  BundleCache cache(CacheDir(), 250);
  fs::path a = *cache.Get(kUrlA, storage_);
  fs::path b = *cache.Get(kUrlB, storage_);
  SetAge(a, 2h);
  SetAge(b, 1h);
  ASSERT_TRUE(cache.Get(kUrlA, storage_).ok());  // a hit: a becomes the newest
  ASSERT_TRUE(cache.Get(kUrlC, storage_).ok());
  EXPECT_TRUE(fs::exists(a));
  EXPECT_FALSE(fs::exists(b));
  EXPECT_EQ(storage_.fetches(), 3);
}

TEST_F(BundleCacheTest, EvictsOnlyAsMuchAsNeeded) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  storage_.Set(kUrlB, std::string(100, 'b'));
  storage_.Set(kUrlC, std::string(100, 'c'));
  BundleCache cache(CacheDir(), 300);
  fs::path a = *cache.Get(kUrlA, storage_);
  fs::path b = *cache.Get(kUrlB, storage_);
  fs::path c = *cache.Get(kUrlC, storage_);
  EXPECT_TRUE(fs::exists(a) && fs::exists(b) && fs::exists(c));
  EXPECT_EQ(cache.SizeBytes(), 300u);
}

TEST_F(BundleCacheTest, EntryJustFetchedIsKeptWhenAloneOverTheCap) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  storage_.Set(kUrlB, std::string(100, 'b'));
  BundleCache cache(CacheDir(), 50);
  fs::path a = *cache.Get(kUrlA, storage_);
  EXPECT_TRUE(fs::exists(a));
  EXPECT_EQ(cache.SizeBytes(), 100u);
  fs::path b = *cache.Get(kUrlB, storage_);
  EXPECT_FALSE(fs::exists(a));
  EXPECT_TRUE(fs::exists(b));
  EXPECT_EQ(ReadFile(b), std::string(100, 'b'));
}

TEST_F(BundleCacheTest, FailedFetchLeavesNoEntry) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  storage_.FailWith(Unavailable("connection reset"));
  BundleCache cache(CacheDir(), 1'000'000);
  Result<fs::path> got = cache.Get(kUrlA, storage_);
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_EQ(CacheNames(), std::vector<std::string>{});
  EXPECT_EQ(cache.SizeBytes(), 0u);

  // Missing object: also nothing left, and the next try fetches again.
  EXPECT_EQ(cache.Get(kUrlB, storage_).status().code(), Code::kNotFound);
  EXPECT_EQ(CacheNames(), std::vector<std::string>{});
  storage_.FailWith(Status::Ok());
  ASSERT_TRUE(cache.Get(kUrlA, storage_).ok());
  EXPECT_EQ(storage_.fetches(), 3);
}

TEST_F(BundleCacheTest, LeavesForeignFilesAlone) {
  WriteFile(CacheDir() / "README", std::string(1000, 'r'));
  WriteFile(CacheDir() / "unpacked" / "x", "x");
  storage_.Set(kUrlA, std::string(100, 'a'));
  BundleCache cache(CacheDir(), 10);
  ASSERT_TRUE(cache.Get(kUrlA, storage_).ok());
  EXPECT_EQ(cache.SizeBytes(), 100u);
  EXPECT_TRUE(fs::exists(CacheDir() / "README"));
  EXPECT_TRUE(fs::exists(CacheDir() / "unpacked" / "x"));
}

TEST_F(BundleCacheTest, ConstructorRemovesOnlyStaleDownloads) {
  std::string key = BundleCache::KeyFor(kUrlA);
  WriteFile(CacheDir() / (key + ".part-old"), "half");
  WriteFile(CacheDir() / (key + ".part-new"), "in progress");
  SetAge(CacheDir() / (key + ".part-old"), 2h);
  SetAge(CacheDir() / (key + ".part-new"), 5min);
  BundleCache cache(CacheDir(), 1000);
  EXPECT_EQ(CacheNames(), std::vector<std::string>{key + ".part-new"});
  EXPECT_EQ(cache.SizeBytes(), 0u);
}

TEST_F(BundleCacheTest, CreatesItsFolder) {
  BundleCache cache(root_ / "a" / "b" / "cache", 1000);
  EXPECT_TRUE(fs::is_directory(root_ / "a" / "b" / "cache"));
}

TEST_F(BundleCacheTest, WorksWithLocalStorage) {
  WriteFile(root_ / "bundles" / "data set.zip", "PK data");
  LocalStorage local;
  BundleCache cache(CacheDir(), 1000);
  std::string url = "file://" + (root_ / "bundles" / "data%20set.zip").string() + "?ignored=1";
  Result<fs::path> got = cache.Get(url, local);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(ReadFile(*got), "PK data");
  EXPECT_EQ(CacheNames(), std::vector<std::string>{BundleCache::KeyFor(url)});
}

TEST_F(BundleCacheTest, ConcurrentGetsStayConsistent) {
  constexpr int kUrls = 6;
  constexpr int kThreads = 8;
  for (int u = 0; u < kUrls; ++u) {
    storage_.Set("https://example.com/" + std::to_string(u), std::string(1000 + u, char('a' + u)));
  }
  // Room for about three bundles: eviction runs while others download.
  BundleCache cache(CacheDir(), 3100);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        int u = (t + i) % kUrls;
        std::string url = "https://example.com/" + std::to_string(u) + "?t=" + std::to_string(t);
        Result<fs::path> got = cache.Get(url, storage_);
        if (!got.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  for (const std::string& name : CacheNames()) {
    EXPECT_EQ(name.find(".part-"), std::string::npos) << name;
    // Every entry is whole.
    std::string content = ReadFile(CacheDir() / name);
    ASSERT_FALSE(content.empty());
    EXPECT_EQ(content, std::string(content.size(), content[0]));
    EXPECT_EQ(content.size(), 1000u + static_cast<std::size_t>(content[0] - 'a'));
  }
  EXPECT_LE(cache.SizeBytes(), 3100u + 1005u);
}

}  // namespace
}  // namespace cw

namespace cw {
namespace {

TEST_F(BundleCacheTest, PinnedCopySurvivesEvictionByAnotherJob) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  storage_.Set(kUrlB, std::string(100, 'b'));
  BundleCache cache(CacheDir(), 150);  // room for one entry
  fs::path pin = root_ / "job1" / "bundles" / "input_data.zip";
  auto got = cache.Get(kUrlA, storage_, pin);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, pin);
  // Another slot's download evicts a's entry before job 1 unpacks it.
  ASSERT_TRUE(cache.Get(kUrlB, storage_).ok());
  EXPECT_FALSE(fs::exists(CacheDir() / BundleCache::KeyFor(kUrlA)));
  std::ifstream in(pin, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, std::string(100, 'a'));
  // A hit pins too, without fetching again.
  fs::path pin2 = root_ / "job2" / "b.zip";
  ASSERT_TRUE(cache.Get(kUrlB, storage_, pin2).ok());
  EXPECT_EQ(storage_.fetches(), 2);
  EXPECT_EQ(fs::file_size(pin2), 100u);
  EXPECT_EQ(cache.SizeBytes(), 100u);  // pins are not counted in the cache
}

TEST_F(BundleCacheTest, KeptOutputIsClaimedOnceByTheSameKeyWithAnyQuery) {
  BundleCache cache(CacheDir(), 1000);
  fs::path out = root_ / "job1" / "output.zip";
  WriteFile(out, std::string(100, 'p'));
  ASSERT_TRUE(cache.Keep(std::string(kUrlA) + "?X-Amz-Signature=put", out));
  // The prediction job's folder goes away before the scoring job comes.
  fs::remove_all(root_ / "job1");

  fs::path take = root_ / "job2" / "bundles" / "res.zip";
  auto got = cache.Claim(std::string(kUrlA) + "?X-Amz-Signature=get", take);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, take);
  EXPECT_EQ(ReadFile(take), std::string(100, 'p'));
  EXPECT_EQ(cache.SizeBytes(), 0u);  // taken out: read by one scoring job
  auto again = cache.Claim(kUrlA, root_ / "job3" / "res.zip");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  EXPECT_FALSE(cache.Claim(kUrlB, root_ / "job3" / "res.zip")->has_value());
  EXPECT_EQ(storage_.fetches(), 0);
}

TEST_F(BundleCacheTest, KeptOutputStaysUnderTheBudget) {
  storage_.Set(kUrlA, std::string(100, 'a'));
  BundleCache cache(CacheDir(), 150);
  ASSERT_TRUE(cache.Get(kUrlA, storage_).ok());
  fs::path out = root_ / "job1" / "output.zip";
  WriteFile(out, std::string(100, 'p'));
  // Room for one: the older entry (the data) goes.
  EXPECT_TRUE(cache.Keep(kUrlB, out));
  EXPECT_EQ(cache.SizeBytes(), 100u);
  EXPECT_FALSE(fs::exists(CacheDir() / BundleCache::KeyFor(kUrlA)));
  // An output over the whole budget is not kept at all.
  fs::path big = root_ / "job1" / "big.zip";
  WriteFile(big, std::string(200, 'q'));
  EXPECT_FALSE(cache.Keep(kUrlC, big));
  EXPECT_LE(cache.SizeBytes(), 150u);
  EXPECT_TRUE(fs::exists(big));  // the job's own file is left alone
}

}  // namespace
}  // namespace cw
