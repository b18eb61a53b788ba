#include "site/utf8.h"

namespace cw {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// How a character starting with `lead` goes on: its length, and the range of
// its second byte (tighter than 80..BF for E0, ED, F0, F4, which excludes
// overlong forms, surrogates and code points past U+10FFFF). Length 0: not a lead byte.
struct LeadInfo {
  int length;
  unsigned char lo, hi;
};

LeadInfo Lead(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c >= 0xE1 && c <= 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Appends the sanitized form of `in` to `out`. When `keep_tail` is set and
// `in` ends in the valid start of a character, those bytes are returned
// instead of being replaced.
std::string Sanitize(std::string_view in, std::string& out, bool keep_tail) {
  out.reserve(out.size() + in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    LeadInfo info = Lead(c);
    if (info.length == 0) {
      out.append(kReplacement);
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    bool broken = false;
    for (int k = 1; k < info.length; ++k, ++j) {
      if (j >= in.size()) break;
      const auto b = static_cast<unsigned char>(in[j]);
      unsigned char lo = k == 1 ? info.lo : 0x80;
      unsigned char hi = k == 1 ? info.hi : 0xBF;
      if (b < lo || b > hi) {
        broken = true;
        break;
      }
    }
    if (!broken && j - i == static_cast<std::size_t>(info.length)) {
      out.append(in.substr(i, j - i));
    } else if (!broken && keep_tail) {
      return std::string(in.substr(i));  // the input ended inside this character
    } else {
      out.append(kReplacement);
    }
    i = j;
  }
  return "";
}

}  // namespace

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  Sanitize(bytes, out, false);
  return out;
}

std::string Utf8StreamSanitizer::Feed(std::string_view chunk) {
  std::string out;
  if (pending_.empty()) {
    pending_ = Sanitize(chunk, out, true);
    return out;
  }
  std::string joined = pending_ + std::string(chunk);
  pending_ = Sanitize(joined, out, true);
  return out;
}

std::string Utf8StreamSanitizer::Finish() {
  std::string out;
  Sanitize(pending_, out, false);
  pending_.clear();
  return out;
}

std::size_t Utf8PrefixLength(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text.size();
  std::size_t n = max_bytes;
  // Step back over continuation bytes to the start of the cut character.
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace cw
