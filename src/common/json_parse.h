// Parsing JSON that strangers wrote (a scoring program's scores.json, a
// broker message): bounded in depth, and errors that never quote the text.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cw {

// Nothing the worker reads needs deeper JSON, and code that walks it (dump,
// redaction) recurses.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as JSON. InvalidInput "<what> nests JSON more than 64 levels
// deep", or "<what> is not valid JSON (line 3, column 5)": only the place,
// never the bytes there, which may be a secret or a host file's content.
Result<nlohmann::json> ParseJsonBounded(std::string_view text, const std::string& what);

}  // namespace cw
