#include "common/abandon.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cw {
namespace {

TEST(AbandonScopeTest, NoScopeIsNeverAbandoned) {
  EXPECT_FALSE(AbandonScope::Active());
  EXPECT_FALSE(AbandonScope::Abandoned());
  EXPECT_EQ(AbandonScope::Current(), nullptr);
}

TEST(AbandonScopeTest, TheInnermostScopeDecidesAndTheOuterComesBack) {
  bool outer = true;
  AbandonScope a([&] { return outer; });
  EXPECT_TRUE(AbandonScope::Abandoned());
  {
    AbandonScope b([] { return false; });
    EXPECT_FALSE(AbandonScope::Abandoned());
    EXPECT_EQ(AbandonScope::Current(), &b);
  }
  EXPECT_TRUE(AbandonScope::Abandoned());
  outer = false;
  EXPECT_FALSE(AbandonScope::Abandoned());
}

TEST(AbandonScopeTest, AThreadsScopeAlsoHearsTheScopeOfTheThreadThatStartedIt) {
  std::atomic<bool> job_revoked{false}, sibling_failed{false};
  AbandonScope job([&] { return job_revoked.load(); });
  const AbandonScope* parent = AbandonScope::Current();
  auto seen = [&] {
    bool out = false;
    std::thread t([&] {
      AbandonScope mine([&] { return sibling_failed.load(); }, parent);
      out = AbandonScope::Abandoned();
    });
    t.join();
    return out;
  };
  EXPECT_FALSE(seen());
  sibling_failed = true;
  EXPECT_TRUE(seen());
  sibling_failed = false;
  job_revoked = true;
  EXPECT_TRUE(seen());
}

}  // namespace
}  // namespace cw
