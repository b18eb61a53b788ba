// The `$variables` of CodaLab-era metadata commands (contract §4.5).
#pragma once

#include <string>

#include "report/reporter.h"

namespace cw {

// Replaces, in the reference worker's order and with plain substring
// replacement (so "$inputs" becomes "/app/inputs"), the legacy variables.
std::string ReplaceLegacyVariables(std::string command, ProgramKind kind, bool is_scoring,
                                   bool ingestion_only_during_scoring);

}  // namespace cw
