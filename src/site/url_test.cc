#include "site/url.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(RedactUrl, DropsTheQueryOfASignedUrl) {
  EXPECT_EQ(RedactUrl("https://s3.example.com/bucket/sub.zip?X-Amz-Signature=abc123&X-Amz-Expires=3600"),
            "https://s3.example.com/bucket/sub.zip");
  EXPECT_EQ(RedactUrl("https://acct.blob.core.windows.net/c/b.zip?sv=2018&sig=XYZ#frag"),
            "https://acct.blob.core.windows.net/c/b.zip");
}

TEST(RedactUrl, MasksTheSubmissionSecret) {
  const std::string secret = "0b6c5a7e-1111-2222-3333-444455556666";
  EXPECT_EQ(RedactUrl("wss://www.codabench.org/submission_input/7/42/" + secret + "/?kind=program"),
            "wss://www.codabench.org/submission_input/7/42/***/");
  EXPECT_EQ(RedactUrl("ws://localhost:8000/submission_input/7/42/" + secret),
            "ws://localhost:8000/submission_input/7/42/***");
  EXPECT_EQ(RedactUrl("/submission_input/7/42/" + secret + "/"), "/submission_input/7/42/***/");
}

TEST(RedactUrl, MasksAPasswordAndKeepsTheRest) {
  EXPECT_EQ(RedactUrl("https://user:hunter2@host:9000/a/b"), "https://user:***@host:9000/a/b");
  EXPECT_EQ(RedactUrl("https://host/a/b"), "https://host/a/b");
  EXPECT_EQ(RedactUrl("https://host/submission_input/1"), "https://host/submission_input/1");
  EXPECT_EQ(RedactUrl(""), "");
}

TEST(ParseUrl, SplitsWhatAConnectionNeeds) {
  auto u = ParseUrl("HTTPS://User:pw@example.org:8443/api/x?y=1#f");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "example.org");
  EXPECT_EQ(u->port, "8443");
  EXPECT_EQ(u->target, "/api/x?y=1");
  EXPECT_EQ(u->HostHeader(), "example.org:8443");

  auto plain = ParseUrl("ws://example.org?kind=program");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->target, "/?kind=program");
  EXPECT_EQ(plain->PortOrDefault(), "80");
  EXPECT_EQ(plain->HostHeader(), "example.org");
  EXPECT_EQ(ParseUrl("wss://h/")->PortOrDefault(), "443");

  auto v6 = ParseUrl("http://[::1]:8000/a");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->HostHeader(), "[::1]:8000");
}

TEST(ParseUrl, RefusesMalformedUrlsWithoutQuotingTheirSecrets) {
  for (const char* bad : {"no-scheme/x", "http://", "http://host:99999/", "http://host:x/",
                          "http://[::1/", "1http://host/"}) {
    auto u = ParseUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.status().code(), Code::kInvalidInput);
    }
  }
  auto u = ParseUrl("http://host:x/p?sig=TOPSECRET");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message().find("TOPSECRET"), std::string::npos) << u.status().message();
}

TEST(FormEncode, WritesWhatPythonsUrlencodeWrites) {
  EXPECT_EQ(FormEncode({{"status", "Failed"}, {"status_details", "a b&c=d/e+f~\xC3\xA9\n"}}),
            "status=Failed&status_details=a+b%26c%3Dd%2Fe%2Bf~%C3%A9%0A");
  EXPECT_EQ(FormEncode({}), "");
  EXPECT_EQ(FormEncode({{"k", ""}}), "k=");
}

}  // namespace
}  // namespace cw
