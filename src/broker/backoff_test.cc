#include "broker/backoff.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, DoublesWithJitterUpToMax) {
  Backoff backoff(milliseconds(1000), milliseconds(30000), /*seed=*/7);
  EXPECT_EQ(backoff.Next(), milliseconds(1000));  // the first wait is the minimum
  milliseconds ceiling(2000);
  for (int i = 0; i < 10; ++i) {
    milliseconds wait = backoff.Next();
    EXPECT_GE(wait, ceiling / 2) << i;
    EXPECT_LE(wait, ceiling) << i;
    ceiling = std::min(ceiling * 2, milliseconds(30000));
  }
}

TEST(Backoff, ResetStartsOver) {
  Backoff backoff(milliseconds(100), milliseconds(1000), 1);
  for (int i = 0; i < 5; ++i) backoff.Next();
  backoff.Reset();
  EXPECT_EQ(backoff.attempt(), 0);
  EXPECT_EQ(backoff.Next(), milliseconds(100));
}

TEST(Backoff, JitterSpreadsWorkers) {
  Backoff a(milliseconds(1000), milliseconds(60000), 1);
  Backoff b(milliseconds(1000), milliseconds(60000), 2);
  bool differ = false;
  for (int i = 0; i < 6; ++i) differ |= a.Next() != b.Next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace cw
