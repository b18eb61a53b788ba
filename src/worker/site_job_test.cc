#include "worker/site_job.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(SiteJob, UsageAddsUpThePrograms) {
  JobResult result;
  result.timings.total_s = 12;
  result.program.peak_memory_bytes = 100;
  result.program.cpu_seconds = 2.5;
  result.ingestion.peak_memory_bytes = 50;
  metrics::JobUsage usage = UsageOf(result);
  EXPECT_EQ(usage.wall_seconds, 12);
  EXPECT_EQ(usage.peak_memory_bytes, 150);
  EXPECT_EQ(usage.cpu_seconds, 2.5);
  EXPECT_FALSE(UsageOf(JobResult{}).peak_memory_bytes);
}

TEST(SiteJob, ABadJobIsReportedOnlyWhenItSaysEnoughToReachTheSite) {
  nlohmann::json raw = {{"id", 5},
                        {"secret", "s"},
                        {"submissions_api_url", "http://site/api"},
                        {"user_pk", 3},
                        {"is_scoring", true}};
  auto target = BadJobTargetOf(raw);
  ASSERT_TRUE(target);
  EXPECT_EQ(target->id, 5);
  EXPECT_EQ(target->user_pk, 3);
  EXPECT_TRUE(target->is_scoring);
  EXPECT_EQ(target->submissions_api_url, "http://site/api");
  // Mistyped optional fields fall back instead of throwing.
  raw["user_pk"] = "three";
  raw["is_scoring"] = "yes";
  target = BadJobTargetOf(raw);
  ASSERT_TRUE(target);
  EXPECT_EQ(target->user_pk, 0);
  EXPECT_FALSE(target->is_scoring);
  // Without an integer id, a secret and a URL there is no one to tell.
  for (const char* key : {"id", "secret", "submissions_api_url"}) {
    nlohmann::json missing = raw;
    missing.erase(key);
    EXPECT_FALSE(BadJobTargetOf(missing)) << key;
  }
  raw["id"] = "5";
  EXPECT_FALSE(BadJobTargetOf(raw));
  EXPECT_FALSE(BadJobTargetOf(nlohmann::json::array()));
}

}  // namespace
}  // namespace cw
