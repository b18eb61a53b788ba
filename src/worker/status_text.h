// The status answer (status_board.h's JSON) as `codabench-worker status`
// prints it for a person at a terminal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace cw {

// Times are shown in the local time zone of the caller (TZ); a field the
// answer lacks is shown as "?" rather than failing, so an older or newer
// worker's answer still prints.
std::string FormatStatus(const nlohmann::json& status);

// "42.1s", "3m 12s", "2h 13m", "3d 4h".
std::string FormatDuration(double seconds);

}  // namespace cw
