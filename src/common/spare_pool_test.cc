#include "common/spare_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace cw {
namespace {

bool AwaitReady(const SparePool<int>& pool, std::size_t count) {
  for (int i = 0; i < 500 && pool.ready() < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pool.ready() == count;
}

TEST(SparePool, MakesAheadHandsEachOutOnceAndDiscardsTheRest) {
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<int> discarded;
  std::set<int> taken;
  {
    SparePool<int> pool("a number", 2, [&]() -> Result<int> { return next++; },
                        [&](const int& n) {
                          std::lock_guard<std::mutex> lock(mu);
                          discarded.push_back(n);
                        });
    EXPECT_FALSE(pool.Take().has_value()) << "nothing before Prepare";
    pool.Prepare();
    ASSERT_TRUE(AwaitReady(pool, 2));
    for (int i = 0; i < 5; ++i) {
      std::optional<int> n = pool.Take();
      if (!n) {
        pool.Prepare();
        ASSERT_TRUE(AwaitReady(pool, 2));
        n = pool.Take();
      }
      ASSERT_TRUE(n.has_value());
      EXPECT_TRUE(taken.insert(*n).second) << *n << " handed out twice";
    }
    pool.Prepare();
    ASSERT_TRUE(AwaitReady(pool, 2));
  }
  // The two no one took went with the pool, and only those.
  ASSERT_EQ(discarded.size(), 2u);
  for (int n : discarded) EXPECT_FALSE(taken.count(n)) << n;
}

TEST(SparePool, AFailingMakeStopsTheRefillUntilTheNextPrepare) {
  std::atomic<int> calls{0};
  std::atomic<bool> fail{true};
  SparePool<int> pool("a number", 3, [&]() -> Result<int> {
    ++calls;
    if (fail) return Unavailable("no numbers today");
    return 7;
  }, [](const int&) {});
  pool.Prepare();
  for (int i = 0; i < 100 && calls == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls, 1) << "one failure ends that refill";
  EXPECT_EQ(pool.ready(), 0u);
  fail = false;
  pool.Prepare();
  ASSERT_TRUE(AwaitReady(pool, 3));
  EXPECT_EQ(pool.Take(), std::optional<int>(7));
}

}  // namespace
}  // namespace cw
