#include "common/recent_ids.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(RecentIds, ForgetsTheOldestPastItsCapacity) {
  RecentIds ids(2);
  ids.Add("a");
  ids.Add("b");
  ids.Add("a");  // already there: keeps its place, nothing is forgotten
  EXPECT_EQ(ids.List(), (std::vector<std::string>{"a", "b"}));
  ids.Add("c");
  EXPECT_FALSE(ids.Contains("a"));
  EXPECT_TRUE(ids.Contains("b"));
  EXPECT_TRUE(ids.Contains("c"));
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.List(), (std::vector<std::string>{"b", "c"}));
}

TEST(RecentIds, CapacityZeroRemembersNothing) {
  RecentIds ids(0);
  ids.Add("a");
  EXPECT_FALSE(ids.Contains("a"));
  EXPECT_EQ(ids.size(), 0u);
}

}  // namespace
}  // namespace cw
