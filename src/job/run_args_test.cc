#include "job/run_args.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

nlohmann::json Prediction() {
  return {{"id", 42},
          {"user_pk", 7},
          {"submissions_api_url", "https://www.codabench.org/api/"},
          {"secret", "3fa85f64-5717-4562-b3fc-2c963f66afa6"},
          {"docker_image", "codalab/codalab-legacy:py37"},
          {"execution_time_limit", 600},
          {"is_scoring", false},
          {"program_data", "https://s3/sub.zip?sig=1"},
          {"ingestion_program", "https://s3/ing.zip"},
          {"input_data", "https://s3/in.zip"},
          {"reference_data", nullptr},
          {"prediction_result", "https://s3/pred.zip?put"},
          {"prediction_stdout", "https://s3/p_out"},
          {"prediction_stderr", "https://s3/p_err"},
          {"prediction_ingestion_stdout", "https://s3/pi_out"},
          {"prediction_ingestion_stderr", "https://s3/pi_err"},
          {"scoring_stdout", "https://s3/s_out"},
          {"ingestion_only_during_scoring", false}};
}

TEST(RunArgs, ParsesAPredictionJob) {
  auto a = ParseRunArgs(Prediction());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->id, 42);
  EXPECT_EQ(a->user_pk, 7);
  EXPECT_EQ(a->submissions_api_url, "https://www.codabench.org/api");
  EXPECT_FALSE(a->is_scoring);
  EXPECT_EQ(a->execution_time_limit, 600);
  EXPECT_EQ(a->reference_data, "");
  EXPECT_EQ(a->stdout_url, "https://s3/p_out");
  EXPECT_EQ(a->ingestion_stderr_url, "https://s3/pi_err");
}

TEST(RunArgs, ScoringJobPicksScoringLogUrlsAndNeedsScoringResult) {
  auto j = Prediction();
  j["is_scoring"] = true;
  auto missing = ParseRunArgs(j);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("scoring_result"), std::string::npos);
  j["scoring_result"] = "https://s3/score.zip";
  auto a = ParseRunArgs(j);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->stdout_url, "https://s3/s_out");
  EXPECT_EQ(a->stderr_url, "");
}

TEST(RunArgs, NamesTheBadKey) {
  auto j = Prediction();
  j.erase("docker_image");
  auto a = ParseRunArgs(j);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Code::kInvalidInput);
  EXPECT_NE(a.status().message().find("docker_image"), std::string::npos);

  j = Prediction();
  j["execution_time_limit"] = "soon";
  a = ParseRunArgs(j);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("execution_time_limit"), std::string::npos);

  j = Prediction();
  j["execution_time_limit"] = 0;
  EXPECT_FALSE(ParseRunArgs(j).ok());
  EXPECT_FALSE(ParseRunArgs(nlohmann::json::array()).ok());
}

TEST(RunArgs, AcceptsNumbersSentAsStrings) {
  auto j = Prediction();
  j["id"] = "42";
  j["execution_time_limit"] = "120";
  auto a = ParseRunArgs(j);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->id, 42);
  EXPECT_EQ(a->execution_time_limit, 120);
}

}  // namespace
// Messages about bad run_args are logged and sent to the site: they name
// the field and its type, never a value (the secret, a signed URL's query).
TEST(RunArgs, ErrorsNeverQuoteValues) {
  const std::string marker = "s3cr3t-marker";
  nlohmann::json j = Prediction();
  j["secret"] = {{"nested", marker}};
  auto a = ParseRunArgs(j);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message().find(marker), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("'secret' must be a string, got object"), std::string::npos)
      << a.status().message();

  j = Prediction();
  j["execution_time_limit"] = marker;
  a = ParseRunArgs(j);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message().find(marker), std::string::npos) << a.status().message();

  a = ParseRunArgs(nlohmann::json::array({Prediction()}));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().message().find("3fa85f64"), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("got array"), std::string::npos) << a.status().message();
}

TEST(RunArgs, AHugeFloatLimitIsNotUndefinedBehaviour) {
  nlohmann::json j = Prediction();
  j["execution_time_limit"] = 1e300;
  auto a = ParseRunArgs(j);
  EXPECT_FALSE(a.ok());
}

}  // namespace cw
