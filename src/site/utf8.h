// Program output is bytes; a JSON message needs valid UTF-8. Invalid bytes are
// shown as U+FFFD rather than failing the message (or the job).
#pragma once

#include <string>
#include <string_view>

namespace cw {

// `bytes` with every invalid sequence (each maximal invalid subpart, as
// browsers decode) replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view bytes);

// The same for a stream cut into chunks at arbitrary places: a character split
// between two chunks comes out whole with the second one. Not thread-safe.
class Utf8StreamSanitizer {
 public:
  std::string Feed(std::string_view chunk);
  // What is left of an unfinished character, as U+FFFD (empty when none).
  std::string Finish();

 private:
  std::string pending_;  // at most 3 bytes: the start of a character
};

// The longest prefix of `text` (valid UTF-8) of at most `max_bytes` bytes that
// does not end inside a character.
std::size_t Utf8PrefixLength(std::string_view text, std::size_t max_bytes);

}  // namespace cw
