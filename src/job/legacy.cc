#include "job/legacy.h"

#include <utility>
#include <vector>

namespace cw {
namespace {

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

}  // namespace

std::string ReplaceLegacyVariables(std::string command, ProgramKind kind, bool is_scoring,
                                   bool ingestion_only_during_scoring) {
  const bool ingestion = kind == ProgramKind::kIngestion;
  // Order matters: each replacement sees the result of the ones before it.
  const std::vector<std::pair<std::string, std::string>> table = {
      {"$input", ingestion ? "/app/input_data" : "/app/input"},
      {"$output", "/app/output"},
      {"$program", ingestion_only_during_scoring && is_scoring ? "/app/ingestion_program"
                                                               : "/app/program"},
      {"$ingestion_program", "/app/program"},
      {"$hidden", "/app/input/ref"},
      {"$shared", "/app/shared"},
      {"$submission_program", "/app/ingested_program"},
      {"$tmp", "/app/output"},
      {"$predictions", is_scoring ? "/app/input/res" : "/app/output"},
  };
  for (const auto& [from, to] : table) ReplaceAll(command, from, to);
  return command;
}

}  // namespace cw
