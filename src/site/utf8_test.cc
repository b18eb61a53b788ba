#include "site/utf8.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(SanitizeUtf8, KeepsValidText) {
  std::string text = "plain, \xC3\xA9t\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80, ";
  text.push_back('\0');
  EXPECT_EQ(SanitizeUtf8(text), text);
  EXPECT_EQ(SanitizeUtf8(""), "");
}

TEST(SanitizeUtf8, ReplacesEachInvalidSequence) {
  EXPECT_EQ(SanitizeUtf8("a\xFF" "b"), "a" + kFffd + "b");
  EXPECT_EQ(SanitizeUtf8("\x80\x80"), kFffd + kFffd);                   // lone continuations
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), kFffd + kFffd);                   // overlong '/'
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);       // a surrogate
  EXPECT_EQ(SanitizeUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // past U+10FFFF
  EXPECT_EQ(SanitizeUtf8("\xE2\x82(x"), kFffd + "(x");                  // cut short, then ASCII
  EXPECT_EQ(SanitizeUtf8("end\xE2\x82"), "end" + kFffd);                // cut at the end
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x98"), kFffd);
}

TEST(Utf8StreamSanitizer, JoinsACharacterSplitBetweenChunks) {
  Utf8StreamSanitizer s;
  EXPECT_EQ(s.Feed("caf\xC3"), "caf");
  EXPECT_EQ(s.Feed("\xA9 \xF0\x9F"), "\xC3\xA9 ");
  EXPECT_EQ(s.Feed("\x98"), "");
  EXPECT_EQ(s.Feed("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(s.Finish(), "");
}

TEST(Utf8StreamSanitizer, ReplacesWhatNeverCompletes) {
  Utf8StreamSanitizer s;
  EXPECT_EQ(s.Feed("a\xE2\x82"), "a");
  EXPECT_EQ(s.Feed("b"), kFffd + "b");
  EXPECT_EQ(s.Feed("\xC3"), "");
  EXPECT_EQ(s.Finish(), kFffd);
  EXPECT_EQ(s.Finish(), "");
}

TEST(Utf8PrefixLength, NeverCutsACharacter) {
  const std::string text = "ab\xE2\x82\xAC" "cd";  // a, b, euro sign, c, d
  EXPECT_EQ(Utf8PrefixLength(text, 100), text.size());
  EXPECT_EQ(Utf8PrefixLength(text, 2), 2u);
  EXPECT_EQ(Utf8PrefixLength(text, 3), 2u);
  EXPECT_EQ(Utf8PrefixLength(text, 4), 2u);
  EXPECT_EQ(Utf8PrefixLength(text, 5), 5u);
  EXPECT_EQ(Utf8PrefixLength(text, 0), 0u);
}

}  // namespace
}  // namespace cw
