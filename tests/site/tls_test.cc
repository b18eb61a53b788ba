// HTTPS and WSS: the site's certificate is checked, by default against the
// system's authorities, or against a CA file the admin names.
#include <chrono>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_site.h"
#include "site/site_reporter.h"
#include "site/websocket.h"

namespace cw {
namespace {

using std::chrono::milliseconds;
using testing_site::FakeSite;
using testing_site::JoinedMessages;
using testing_site::Records;

const char kSecret[] = "4f3e2d1c-aaaa-4bbb-8ccc-ddddeeeeffff";

TEST(Tls, HttpsAndWssWorkWithTheSitesCertificate) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.UseTls());
  ASSERT_TRUE(site.Start());
  HttpClientOptions http_options;
  http_options.ca_bundle = site.certificate();
  HttpClient http(http_options);
  SiteReporterOptions options;
  options.socket.ca_bundle = site.certificate();
  options.socket.first_backoff = milliseconds(100);
  {
    SiteReporter reporter(site.Url("/api"), 42, 7, kSecret, false, http, options);
    Status st = reporter.UpdateStatus(JobStatus::kRunning, "ingestion_hostname-x");
    ASSERT_TRUE(st.ok()) << st.ToString();
    reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "over TLS\n");
    ASSERT_TRUE(site.WaitFor([](const Records& r) { return JoinedMessages(r, "program") == "over TLS\n"; }))
        << site.ServerLog();
  }
  EXPECT_EQ(site.Events("patch").size(), 1u);
  EXPECT_EQ(site.Events("disconnect", "program").size(), 1u);
}

TEST(Tls, AnUnknownCertificateIsRefusedAndNotRetried) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.UseTls());
  ASSERT_TRUE(site.Start());
  HttpClientOptions http_options;
  std::vector<milliseconds> sleeps;
  http_options.sleep = [&](milliseconds d) { sleeps.push_back(d); };
  HttpClient http(http_options);
  SiteReporterOptions options;
  options.socket.first_backoff = milliseconds(50);
  SiteReporter reporter(site.Url("/api"), 42, 7, kSecret, false, http, options);
  Status st = reporter.UpdateStatus(JobStatus::kRunning, "x");
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("certificate"), std::string::npos) << st.message();
  EXPECT_TRUE(sleeps.empty());

  const auto start = std::chrono::steady_clock::now();
  reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "never shown\n");
  std::this_thread::sleep_for(milliseconds(300));
  reporter.Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3500));
  EXPECT_TRUE(site.Events("patch").empty());
  EXPECT_TRUE(site.Events("connect").empty());
}

}  // namespace
}  // namespace cw
