#include "common/backoff.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

using std::chrono::milliseconds;

TEST(JitteredDoubling, DoublesPerAttemptUpToTheCapAndJittersInTheUpperHalf) {
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 1, 1.0), milliseconds(1000));
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 1, 0.0), milliseconds(500));
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 3, 1.0), milliseconds(4000));
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 3, 0.5), milliseconds(3000));
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 20, 1.0),
            milliseconds(30000));
  // Out-of-range randomness is clamped; the floor wins over a low draw.
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 1, 7.0), milliseconds(1000));
  EXPECT_EQ(JitteredDoubling(milliseconds(1000), milliseconds(30000), 1, 0.0, milliseconds(900)),
            milliseconds(900));
}

}  // namespace
}  // namespace cw
