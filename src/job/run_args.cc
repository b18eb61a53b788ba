#include "job/run_args.h"

#include <cmath>

namespace cw {
namespace {

// Codabench sends ints, but older sites and hand-written messages send strings.
Result<long long> GetInt(const nlohmann::json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return InvalidInput(std::string("run_args has no '") + key + "'");
    return 0LL;
  }
  if (it->is_number_integer()) return it->get<long long>();
  if (it->is_number_float()) {
    // A float past long long's range would be undefined behaviour to convert.
    double d = it->get<double>();
    if (std::isfinite(d) && std::fabs(d) < 9.2e18) return static_cast<long long>(d);
  }
  if (it->is_string()) {
    try {
      size_t used = 0;
      long long v = std::stoll(it->get<std::string>(), &used);
      if (used == it->get<std::string>().size()) return v;
    } catch (const std::exception&) {
    }
  }
  // The value's type, never the value: run_args hold the submission's secret
  // and signed URLs, and this message is logged and sent to the site.
  return InvalidInput(std::string("run_args '") + key + "' must be a number, got " +
                      (it->is_string() ? std::string("text") : std::string(it->type_name())));
}

Result<std::string> GetString(const nlohmann::json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return InvalidInput(std::string("run_args has no '") + key + "'");
    return std::string();
  }
  if (!it->is_string()) {
    return InvalidInput(std::string("run_args '") + key + "' must be a string, got " +
                        (it->is_number() ? std::string("a number") : std::string(it->type_name())));
  }
  return it->get<std::string>();
}

bool GetBool(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  if (it->is_string()) {
    std::string s = it->get<std::string>();
    return s == "True" || s == "true" || s == "1";
  }
  return false;
}

}  // namespace

Result<RunArgs> ParseRunArgs(const nlohmann::json& j) {
  if (!j.is_object()) {
    return InvalidInput(std::string("run_args must be a JSON object, got ") + j.type_name());
  }
  RunArgs a;
  CW_ASSIGN_OR_RETURN(a.id, GetInt(j, "id", true));
  CW_ASSIGN_OR_RETURN(a.user_pk, GetInt(j, "user_pk", false));
  CW_ASSIGN_OR_RETURN(a.submissions_api_url, GetString(j, "submissions_api_url", true));
  while (!a.submissions_api_url.empty() && a.submissions_api_url.back() == '/') {
    a.submissions_api_url.pop_back();
  }
  CW_ASSIGN_OR_RETURN(a.secret, GetString(j, "secret", true));
  CW_ASSIGN_OR_RETURN(a.docker_image, GetString(j, "docker_image", true));
  if (a.docker_image.empty()) return InvalidInput("run_args 'docker_image' is empty");
  long long limit = 0;
  CW_ASSIGN_OR_RETURN(limit, GetInt(j, "execution_time_limit", true));
  if (limit <= 0) {
    return InvalidInput("run_args 'execution_time_limit' must be a positive number of seconds");
  }
  a.execution_time_limit = static_cast<int>(std::min<long long>(limit, 1LL << 30));
  a.is_scoring = GetBool(j, "is_scoring");
  a.ingestion_only_during_scoring = GetBool(j, "ingestion_only_during_scoring");

  CW_ASSIGN_OR_RETURN(a.program_data, GetString(j, "program_data", false));
  CW_ASSIGN_OR_RETURN(a.ingestion_program, GetString(j, "ingestion_program", false));
  CW_ASSIGN_OR_RETURN(a.input_data, GetString(j, "input_data", false));
  CW_ASSIGN_OR_RETURN(a.reference_data, GetString(j, "reference_data", false));
  CW_ASSIGN_OR_RETURN(a.prediction_result, GetString(j, "prediction_result", true));
  CW_ASSIGN_OR_RETURN(a.scoring_result, GetString(j, "scoring_result", a.is_scoring));
  CW_ASSIGN_OR_RETURN(a.detailed_results_url, GetString(j, "detailed_results_url", false));

  const char* prefix = a.is_scoring ? "scoring" : "prediction";
  auto log_key = [&](const char* suffix) { return std::string(prefix) + suffix; };
  CW_ASSIGN_OR_RETURN(a.stdout_url, GetString(j, log_key("_stdout").c_str(), false));
  CW_ASSIGN_OR_RETURN(a.stderr_url, GetString(j, log_key("_stderr").c_str(), false));
  CW_ASSIGN_OR_RETURN(a.ingestion_stdout_url,
                      GetString(j, log_key("_ingestion_stdout").c_str(), false));
  CW_ASSIGN_OR_RETURN(a.ingestion_stderr_url,
                      GetString(j, log_key("_ingestion_stderr").c_str(), false));
  return a;
}

}  // namespace cw
