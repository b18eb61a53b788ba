#include "site/site_reporter.h"

#include <chrono>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "site/test_http_server.h"
#include "site/test_log_capture.h"

namespace cw {
namespace {

using std::chrono::milliseconds;
using testing_http::Request;
using testing_http::Response;
using testing_http::Server;

const char kSecret[] = "7d4e1c2a-0f0f-4b4b-9a9a-123456789abc";

Response Answer(int code, const std::string& reason, const std::string& body = "{}") {
  Response r;
  r.status = code;
  r.reason = reason;
  r.body = body;
  return r;
}

// Decodes a form body (enough for these tests: '+' and %XX).
std::map<std::string, std::string> Form(const std::string& body) {
  auto decode = [](const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        out.push_back(' ');
      } else if (s[i] == '%' && i + 2 < s.size()) {
        out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(s[i]);
      }
    }
    return out;
  };
  std::map<std::string, std::string> fields;
  std::size_t pos = 0;
  while (pos <= body.size() && !body.empty()) {
    std::size_t amp = body.find('&', pos);
    std::string pair = body.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    std::size_t eq = pair.find('=');
    fields[decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return fields;
}

class SiteReporterTest : public ::testing::Test {
 protected:
  SiteReporterTest() {
    HttpClientOptions o;
    o.sleep = [this](milliseconds d) { sleeps_.push_back(d); };
    client_ = std::make_unique<HttpClient>(o);
  }

  SiteReporterOptions Options(bool live = false) {
    SiteReporterOptions o;
    o.retry = RetryPolicy{4, milliseconds(10), milliseconds(100), std::chrono::seconds(60)};
    o.live_logs = live;
    o.close_grace = milliseconds(300);
    return o;
  }

  std::vector<milliseconds> sleeps_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(SiteReporterTest, StatusUpdatesArePatchedAsForms) {
  Server server([](const Request&) { return Answer(200, "OK"); });
  SiteReporter reporter(server.Url("/api"), 42, 7, kSecret, false, *client_, Options());
  ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kRunning, "ingestion_hostname-gpu box").ok());
  ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kScoring, "").ok());
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (auto& r : requests) {
    EXPECT_EQ(r.method, "PATCH");
    EXPECT_EQ(r.target, "/api/submissions/42/");
    EXPECT_EQ(r.headers["content-type"], "application/x-www-form-urlencoded");
  }
  EXPECT_EQ(requests[0].body, std::string("status=Running&status_details=ingestion_hostname-gpu+box&secret=") + kSecret);
  auto second = Form(requests[1].body);
  EXPECT_EQ(second, (std::map<std::string, std::string>{{"status", "Scoring"}, {"secret", kSecret}}));
}

TEST_F(SiteReporterTest, ChecksumAndErrorsAreTheSamePatch) {
  Server server([](const Request&) { return Answer(200, "OK"); });
  SiteReporter reporter(server.Url("/api/"), 42, 7, kSecret, true, *client_, Options());
  ASSERT_TRUE(reporter.ReportMd5("d41d8cd98f00b204e9800998ecf8427e").ok());
  ASSERT_TRUE(reporter.ReportError(ErrorType::kExecutionTimeLimitExceeded,
                                   "Execution Time Limit exceeded. Limit was 60 seconds", true).ok());
  ASSERT_TRUE(reporter.ReportError(ErrorType::kDockerImagePullFail, "Pull for x failed: 401", false).ok());
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].target, "/api/submissions/42/");
  EXPECT_EQ(Form(requests[0].body),
            (std::map<std::string, std::string>{{"md5", "d41d8cd98f00b204e9800998ecf8427e"}, {"secret", kSecret}}));
  EXPECT_EQ(Form(requests[1].body), (std::map<std::string, std::string>{
                                        {"type", "Execution_Time_Limit_Exceeded"},
                                        {"error_message", "Execution Time Limit exceeded. Limit was 60 seconds"},
                                        {"is_scoring", "True"},
                                        {"secret", kSecret}}));
  EXPECT_EQ(Form(requests[2].body)["is_scoring"], "False");
  EXPECT_EQ(Form(requests[2].body)["type"], "Docker_Image_Pull_Fail");
}

TEST_F(SiteReporterTest, ScoresArePostedAsJson) {
  Server server([](const Request&) { return Answer(201, "Created"); });
  SiteReporter reporter(server.Url("/api"), 42, 7, kSecret, true, *client_, Options());
  ASSERT_TRUE(reporter.ReportScores(nlohmann::json{{"accuracy", 0.93}, {"duration", 12}}).ok());
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/api/upload_submission_scores/42/");
  EXPECT_EQ(requests[0].headers["content-type"], "application/json");
  EXPECT_EQ(nlohmann::json::parse(requests[0].body),
            (nlohmann::json{{"secret", kSecret}, {"scores", {{"accuracy", 0.93}, {"duration", 12}}}}));
}

TEST_F(SiteReporterTest, ServerErrorsAreRetriedAndRefusalsAreNot) {
  int calls = 0;
  Server server([&](const Request&) {
    ++calls;
    if (calls <= 2) return Answer(500, "Internal Server Error", "<html>oops</html>");
    if (calls == 3) return Answer(200, "OK");
    return Answer(400, "Bad Request", "{\"status\": [\"\\\"Bogus\\\" is not a valid choice.\"]}");
  });
  SiteReporter reporter(server.Url("/api"), 42, 7, kSecret, false, *client_, Options());
  ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kPreparing, "").ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(sleeps_.size(), 2u);

  Status refused = reporter.UpdateStatus(JobStatus::kFinished, "");
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(refused.code(), Code::kInvalidInput);
  EXPECT_EQ(refused.message(),
            "the site refused the status update (Finished): 400 Bad Request: "
            "{\"status\": [\"\\\"Bogus\\\" is not a valid choice.\"]}");
}

TEST_F(SiteReporterTest, AWrongSecretSaysSoWithoutRepeatingIt) {
  Server server([](const Request& r) {
    return Answer(403, "Forbidden", "{\"detail\": \"Secret " + Form(r.body)["secret"] + " does not match\"}");
  });
  std::string log_text;
  Status st;
  {
    testing_log::LogCapture capture;
    SiteReporter reporter(server.Url("/api"), 42, 7, kSecret, false, *client_, Options());
    st = reporter.UpdateStatus(JobStatus::kRunning, "x");
    log_text = capture.text();
  }
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_EQ(st.message(),
            "the site refused the status update (Running): 403 Forbidden (the site did not accept the "
            "submission's secret): {\"detail\": \"Secret *** does not match\"}");
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(log_text.find(kSecret), std::string::npos) << log_text;
}

TEST(LiveLogUrl, UsesTheApiHostAndTheMatchingWebsocketScheme) {
  EXPECT_EQ(*LiveLogUrl("https://www.codabench.org/api", 7, 42, "s3cr3t", "program"),
            "wss://www.codabench.org/submission_input/7/42/s3cr3t/?kind=program");
  EXPECT_EQ(*LiveLogUrl("http://localhost:8000/api", 7, 42, "s", "error_logs"),
            "ws://localhost:8000/submission_input/7/42/s/?kind=error_logs");
  EXPECT_FALSE(LiveLogUrl("ftp://host/api", 1, 2, "s", "program").ok());
  EXPECT_FALSE(LiveLogUrl("not a url", 1, 2, "s", "program").ok());
}

TEST_F(SiteReporterTest, AnUnreachableLiveSiteNeverStallsTheJob) {
  int port;
  {
    Server gone([](const Request&) { return Answer(200, "OK"); });
    port = gone.port();
  }
  std::string log_text;
  {
    testing_log::LogCapture capture;
    auto options = Options(true);
    options.socket.first_backoff = milliseconds(20);
    SiteReporter reporter("http://127.0.0.1:" + std::to_string(port) + "/api", 42, 7, kSecret, false, *client_,
                          options);
    const auto start = std::chrono::steady_clock::now();
    std::string chunk(4096, 'x');
    for (int i = 0; i < 2000; ++i) {
      reporter.Log(i % 2 ? ProgramKind::kProgram : ProgramKind::kIngestion,
                   i % 3 ? LogStream::kStdout : LogStream::kStderr, chunk);
    }
    reporter.LiveError("Execution Time Limit exceeded");
    reporter.DetailedResultsUpdated();
    // A stall would be a connect timeout (5 s) per call, minutes in all; the
    // bound is loose so a sanitized build on a busy machine does not trip it.
    EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(4000));
    const auto finish = std::chrono::steady_clock::now();
    reporter.Finish();
    EXPECT_LT(std::chrono::steady_clock::now() - finish, milliseconds(4000));
    reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "after finish is dropped");
    log_text = capture.text();
  }
  EXPECT_NE(log_text.find("/submission_input/7/42/***/"), std::string::npos) << log_text;
  EXPECT_EQ(log_text.find(kSecret), std::string::npos) << log_text;
}

TEST_F(SiteReporterTest, LiveOutputOffOpensNothing) {
  std::string log_text;
  {
    testing_log::LogCapture capture;
    SiteReporter reporter("http://127.0.0.1:1/api", 42, 7, kSecret, false, *client_, Options(false));
    reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "hello");
    reporter.LiveError("x");
    reporter.DetailedResultsUpdated();
    log_text = capture.text();
  }
  EXPECT_EQ(log_text.find("live"), std::string::npos) << log_text;
}

}  // namespace
}  // namespace cw
