// run_args: the one argument of a Codabench `compute_worker_run` task
// (contract §2), parsed and checked once so the pipeline can trust it.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cw {

struct RunArgs {
  long long id = 0;
  long long user_pk = 0;
  std::string submissions_api_url;
  std::string secret;
  std::string docker_image;
  int execution_time_limit = 0;  // seconds, both programs together
  bool is_scoring = false;
  bool ingestion_only_during_scoring = false;

  // Bundles (zip URLs); empty when absent.
  std::string program_data;
  std::string ingestion_program;
  std::string input_data;
  std::string reference_data;
  // Prediction: where the output zip goes. Scoring: where it is read from.
  std::string prediction_result;
  std::string scoring_result;
  std::string detailed_results_url;

  // Log URLs for this job's kind (prediction_* or scoring_* in run_args).
  std::string stdout_url, stderr_url, ingestion_stdout_url, ingestion_stderr_url;
};

// Fails with InvalidInput naming the missing or mistyped key.
Result<RunArgs> ParseRunArgs(const nlohmann::json& j);

}  // namespace cw
