// String helpers shared by the gpu part's parsers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cw::gpu_text {

std::string_view Trim(std::string_view s);
// Splits on every `sep`; "a,,b" gives three pieces, "" gives one empty piece.
std::vector<std::string_view> Split(std::string_view s, char sep);
bool IsDigits(std::string_view s);
std::string Lower(std::string_view s);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
// The first line of `s`, trimmed and cut at `max` characters, for quoting a
// tool's answer in an error message.
std::string FirstLine(std::string_view s, std::size_t max = 200);

}  // namespace cw::gpu_text
