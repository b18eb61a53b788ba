#include "common/json_parse.h"

namespace cw {
namespace {

// Thrown by the parser callback to stop at kMaxJsonDepth.
struct JsonTooDeep {};

// "line 3, column 5" for a byte offset (1-based, as nlohmann reports it).
std::string LineAndColumn(std::string_view text, std::size_t byte) {
  if (byte > 0) --byte;
  if (byte > text.size()) byte = text.size();
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < byte; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

Result<nlohmann::json> ParseJsonBounded(std::string_view text, const std::string& what) {
  using nlohmann::json;
  auto depth_limit = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start ||
         event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw JsonTooDeep{};
    }
    return true;
  };
  try {
    return json::parse(text, depth_limit);
  } catch (const JsonTooDeep&) {
    return InvalidInput(what + " nests JSON more than " + std::to_string(kMaxJsonDepth) +
                        " levels deep");
  } catch (const json::parse_error& e) {
    return InvalidInput(what + " is not valid JSON (" + LineAndColumn(text, e.byte) + ")");
  } catch (const json::exception&) {
    return InvalidInput(what + " is not valid JSON");
  }
}

}  // namespace cw
