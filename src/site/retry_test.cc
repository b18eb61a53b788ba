#include "site/retry.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

using std::chrono::milliseconds;

TEST(BackoffDelay, DoublesUpToTheCapWithJitterInTheUpperHalf) {
  RetryPolicy p{10, milliseconds(1000), milliseconds(8000), std::chrono::seconds(600)};
  EXPECT_EQ(BackoffDelay(p, 1, 1.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(p, 1, 0.0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(p, 2, 1.0), milliseconds(2000));
  EXPECT_EQ(BackoffDelay(p, 3, 1.0), milliseconds(4000));
  EXPECT_EQ(BackoffDelay(p, 4, 1.0), milliseconds(8000));
  EXPECT_EQ(BackoffDelay(p, 9, 1.0), milliseconds(8000));
  EXPECT_EQ(BackoffDelay(p, 1000, 0.5), milliseconds(6000));
  EXPECT_EQ(BackoffDelay(p, 2, 0.5), milliseconds(1500));
}

TEST(BackoffDelay, SitePolicyRidesOutAboutTwoMinutes) {
  RetryPolicy p = SiteRetryPolicy();
  EXPECT_EQ(p.max_attempts, 8);
  long long most = 0;
  for (int attempt = 1; attempt < p.max_attempts; ++attempt) most += BackoffDelay(p, attempt, 1.0).count();
  EXPECT_GE(most, 60'000);
  EXPECT_LE(most, 150'000);
}

TEST(HttpStatusClasses, TransientAreRetriedAndTheRestSayWho) {
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L, 599L}) EXPECT_TRUE(IsTransientHttpStatus(s)) << s;
  for (long s : {200L, 301L, 400L, 401L, 403L, 404L, 409L, 413L, 422L}) EXPECT_FALSE(IsTransientHttpStatus(s)) << s;
  EXPECT_EQ(CodeForHttpStatus(404), Code::kNotFound);
  EXPECT_EQ(CodeForHttpStatus(401), Code::kPermissionDenied);
  EXPECT_EQ(CodeForHttpStatus(403), Code::kPermissionDenied);
  EXPECT_EQ(CodeForHttpStatus(503), Code::kUnavailable);
  EXPECT_EQ(CodeForHttpStatus(400), Code::kInvalidInput);
  EXPECT_EQ(CodeForHttpStatus(413), Code::kInvalidInput);
  EXPECT_EQ(HttpStatusText(403), "403 Forbidden");
  EXPECT_EQ(HttpStatusText(299), "299");
}

}  // namespace
}  // namespace cw
