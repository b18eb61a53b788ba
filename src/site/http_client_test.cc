#include "site/http_client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/abandon.h"
#include "site/test_http_server.h"
#include "site/test_log_capture.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing_http::Request;
using testing_http::Response;
using testing_http::Server;

// A client whose waits are recorded instead of slept, on a clock that moves
// only when it "sleeps".
struct FakeTime {
  std::vector<milliseconds> sleeps;
  std::chrono::steady_clock::time_point now{};

  HttpClientOptions Options() {
    HttpClientOptions o;
    o.sleep = [this](milliseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    o.now = [this] { return now; };
    o.unit_random = [] { return 1.0; };
    o.connect_timeout = std::chrono::seconds(2);
    o.request_timeout = std::chrono::seconds(10);
    return o;
  }
};

RetryPolicy FivePolicy() { return RetryPolicy{5, milliseconds(100), milliseconds(1000), std::chrono::seconds(60)}; }

Response Answer(int code, const std::string& reason, const std::string& body = "") {
  Response r;
  r.status = code;
  r.reason = reason;
  r.body = body;
  return r;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cw_site_http_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
};

TEST_F(HttpClientTest, FiveHundredTwiceThenOkTakesThreeAttempts) {
  std::atomic<int> calls{0};
  Server server([&](const Request&) {
    return ++calls <= 2 ? Answer(500, "Internal Server Error") : Answer(200, "OK", "{\"ok\":true}");
  });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.method = "PATCH";
  req.url = server.Url("/api/submissions/1/");
  req.body = "status=Running";
  auto got = client.Send(req, FivePolicy());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "{\"ok\":true}");
  EXPECT_EQ(server.request_count(), 3u);
  ASSERT_EQ(time.sleeps.size(), 2u);
  EXPECT_EQ(time.sleeps[0], milliseconds(100));
  EXPECT_EQ(time.sleeps[1], milliseconds(200));
  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.method, "PATCH");
    EXPECT_EQ(r.body, "status=Running");
  }
}

TEST_F(HttpClientTest, ForbiddenFailsAtOnceWithAReadableReason) {
  Server server([](const Request&) { return Answer(403, "Forbidden", "<Error><Code>AccessDenied</Code></Error>"); });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.method = "PUT";
  req.url = server.Url("/bucket/out.zip?X-Amz-Signature=deadbeef");
  req.body = "zip";
  req.server = "the storage";
  req.action = "upload";
  req.forbidden_hint = "the signed URL may have expired";
  auto got = client.Send(req, FivePolicy());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(got.status().message(),
            "the storage refused the upload: 403 Forbidden (the signed URL may have expired)");
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_TRUE(time.sleeps.empty());
}

TEST_F(HttpClientTest, OtherRefusalsMapToTheirCodesAndQuoteTheSiteWhenAsked) {
  long next = 404;
  Server server([&](const Request&) {
    return Answer(static_cast<int>(next), "X", "{\"status\": [\"\\\"Bogus\\\" is not a valid choice.\"]}");
  });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/x");
  req.server = "the site";
  req.action = "status update";
  req.error_body = ErrorBody::kText;

  auto missing = client.Send(req, FivePolicy());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  next = 400;
  auto bad = client.Send(req, FivePolicy());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidInput);
  EXPECT_EQ(bad.status().message(),
            "the site refused the status update: 400 Bad Request: {\"status\": [\"\\\"Bogus\\\" is not a valid choice.\"]}");
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_TRUE(time.sleeps.empty());
}

TEST_F(HttpClientTest, LongAnswersAreCutAt300Characters) {
  Server server([](const Request&) { return Answer(400, "Bad Request", std::string(5000, 'x')); });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/x");
  req.error_body = ErrorBody::kText;
  auto got = client.Send(req, FivePolicy());
  ASSERT_FALSE(got.ok());
  EXPECT_LT(got.status().message().size(), 400u);
  EXPECT_NE(got.status().message().find(std::string(300, 'x') + "..."), std::string::npos);
}

TEST_F(HttpClientTest, TransientFailuresEndAsUnavailableWhenThePolicyRunsOut) {
  Server server([](const Request&) { return Answer(503, "Service Unavailable"); });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/x");
  req.server = "the site";
  req.action = "scores";
  RetryPolicy policy{3, milliseconds(100), milliseconds(1000), std::chrono::seconds(60)};
  auto got = client.Send(req, policy);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_EQ(got.status().message(),
            "the site answered the scores with 503 Service Unavailable (gave up after 3 attempts in 0.3 s)");
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(time.sleeps.size(), 2u);
}

TEST_F(HttpClientTest, MaxTotalStopsRetriesEarly) {
  Server server([](const Request&) { return Answer(502, "Bad Gateway"); });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/x");
  // Waits of 1, 2, 4 s: the third would end past 5 s.
  RetryPolicy policy{10, milliseconds(1000), milliseconds(60000), std::chrono::seconds(5)};
  auto got = client.Send(req, policy);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(time.sleeps.size(), 2u);
}

TEST_F(HttpClientTest, RetryAfterIsHonouredUpToTheCap) {
  std::atomic<int> calls{0};
  Server server([&](const Request&) {
    if (++calls > 1) return Answer(200, "OK");
    Response r = Answer(429, "Too Many Requests");
    r.headers.push_back({"Retry-After", "7"});
    return r;
  });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/x");
  RetryPolicy policy{3, milliseconds(100), milliseconds(5000), std::chrono::seconds(60)};
  auto got = client.Send(req, policy);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(time.sleeps.size(), 1u);
  EXPECT_EQ(time.sleeps[0], milliseconds(5000));
}

TEST_F(HttpClientTest, ConnectionRefusedIsRetriedThenUnavailable) {
  int port;
  {
    Server gone([](const Request&) { return Answer(200, "OK"); });
    port = gone.port();
  }
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  req.server = "the site";
  req.action = "checksum";
  RetryPolicy policy{2, milliseconds(100), milliseconds(1000), std::chrono::seconds(60)};
  auto got = client.Send(req, policy);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_EQ(got.status().message().rfind("could not reach the site for the checksum: ", 0), 0u)
      << got.status().message();
  EXPECT_NE(got.status().message().find("gave up after 2 attempts"), std::string::npos);
  EXPECT_EQ(time.sleeps.size(), 1u);
}

TEST_F(HttpClientTest, AHangUpIsRetried) {
  std::atomic<int> calls{0};
  Server server([&](const Request&) {
    Response r = Answer(200, "OK", "fine");
    r.hang_up = ++calls == 1;
    return r;
  });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/x");
  auto got = client.Send(req, FivePolicy());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "fine");
  EXPECT_EQ(server.request_count(), 2u);
}

TEST_F(HttpClientTest, PerformReturnsAnyAnswerAndCapsTheBody) {
  Server server([](const Request&) { return Answer(418, "Teapot", std::string(200 * 1024, 'b')); });
  HttpClient client;
  HttpRequest req;
  req.url = server.Url("/x");
  auto got = client.Perform(req);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, 418);
  EXPECT_EQ(got->body.size(), HttpResponse::kMaxBody);
}

TEST_F(HttpClientTest, DownloadsToAFileThroughAPartFile) {
  std::string payload(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 7919) & 0xFF);
  Server server([&](const Request&) { return Answer(200, "OK", payload); });
  HttpClient client;
  HttpRequest req;
  req.url = server.Url("/bundle.zip?sig=1");
  req.download_to = dir_ / "bundle.zip";
  auto got = client.Send(req, FivePolicy());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->body.empty());
  EXPECT_EQ(Read(dir_ / "bundle.zip"), payload);
  EXPECT_FALSE(fs::exists(dir_ / "bundle.zip.part"));
}

TEST_F(HttpClientTest, CallsToOneServerReuseOneConnection) {
  Server server([](const Request& r) { return Answer(200, "OK", r.method == "GET" ? "data" : "{}"); },
                1 << 20, /*keep_alive=*/true);
  std::ofstream(dir_ / "up.bin") << std::string(100 * 1024, 'u');
  // As a job does: status, a download, an upload; through two clients, as the
  // reporter and the storage each have their own.
  HttpClient site;
  HttpClient storage;
  for (int round = 0; round < 3; ++round) {
    HttpRequest patch;
    patch.method = "PATCH";
    patch.url = server.Url("/api/submissions/1/");
    patch.body = R"({"status": "Running"})";
    ASSERT_TRUE(site.Send(patch, FivePolicy()).ok());
    HttpRequest get;
    get.url = server.Url("/bundle.zip?sig=" + std::to_string(round));
    get.download_to = dir_ / "bundle.zip";
    ASSERT_TRUE(storage.Send(get, FivePolicy()).ok());
    HttpRequest put;
    put.method = "PUT";
    put.url = server.Url("/out.zip?sig=" + std::to_string(round));
    put.upload_from = dir_ / "up.bin";
    ASSERT_TRUE(storage.Send(put, FivePolicy()).ok());
  }
  EXPECT_EQ(server.request_count(), 9u);
  EXPECT_EQ(server.connection_count(), 1);
  EXPECT_EQ(server.requests()[8].body_bytes, 100u * 1024);
}

TEST_F(HttpClientTest, AServerThatClosesEachConnectionStillAnswersEveryCall) {
  Server server([](const Request&) { return Answer(200, "OK", "{}"); });  // Connection: close
  HttpClient client;
  for (int i = 0; i < 3; ++i) {
    HttpRequest req;
    req.url = server.Url("/x");
    ASSERT_TRUE(client.Send(req, FivePolicy()).ok()) << i;
  }
  EXPECT_EQ(server.connection_count(), 3);
}

TEST_F(HttpClientTest, AFailedDownloadLeavesNoFile) {
  Server server([](const Request&) {
    Response r = Answer(200, "OK", std::string(1000, 'z'));
    r.claimed_length = 5000;  // the connection ends early every time
    return r;
  });
  FakeTime time;
  HttpClient client(time.Options());
  HttpRequest req;
  req.url = server.Url("/bundle.zip");
  req.download_to = dir_ / "bundle.zip";
  RetryPolicy policy{2, milliseconds(10), milliseconds(10), std::chrono::seconds(60)};
  auto got = client.Send(req, policy);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "bundle.zip"));
  EXPECT_FALSE(fs::exists(dir_ / "bundle.zip.part"));
}

TEST_F(HttpClientTest, AMissingDownloadIsNotFoundAndLeavesNoFile) {
  Server server([](const Request&) { return Answer(404, "Not Found", "nothing here"); });
  HttpClient client;
  HttpRequest req;
  req.url = server.Url("/nope.zip");
  req.download_to = dir_ / "nope.zip";
  auto got = client.Send(req, FivePolicy());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_FALSE(fs::exists(dir_ / "nope.zip"));
  EXPECT_FALSE(fs::exists(dir_ / "nope.zip.part"));
}

TEST_F(HttpClientTest, AMissingUploadSourceIsNotFoundWithoutACall) {
  Server server([](const Request&) { return Answer(200, "OK"); });
  HttpClient client;
  HttpRequest req;
  req.method = "PUT";
  req.url = server.Url("/x");
  req.upload_from = dir_ / "absent.zip";
  auto got = client.Send(req, FivePolicy());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
  EXPECT_EQ(server.request_count(), 0u);
}

long ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(HttpClientTest, UploadsA100MBFileWithoutHoldingIt) {
  const fs::path file = dir_ / "output.zip";
  constexpr std::uint64_t kSize = 100ull * 1024 * 1024;
  {
    std::ofstream out(file, std::ios::binary);
    std::string block(1 << 20, 'u');
    for (std::uint64_t i = 0; i < kSize / block.size(); ++i) out.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  // Its pages in the page cache are not this process's memory, but drop
  // them anyway so that the number measures only what the upload holds.
  int fd = ::open(file.c_str(), O_RDONLY);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);

  Server server([](const Request&) { return Answer(201, "Created"); }, 1024);
  HttpClient client;
  HttpRequest req;
  req.method = "PUT";
  req.url = server.Url("/bucket/output.zip");
  req.upload_from = file;
  req.headers = {"Content-Type: application/zip"};

  std::atomic<bool> done{false};
  std::atomic<long> peak{0};
  const long before = ResidentKiB();
  std::thread sampler([&] {
    while (!done) {
      peak = std::max(peak.load(), ResidentKiB());
      std::this_thread::sleep_for(milliseconds(2));
    }
  });
  auto got = client.Send(req, FivePolicy());
  done = true;
  sampler.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, 201);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].body_bytes, kSize);
  EXPECT_EQ(requests[0].headers["content-length"], std::to_string(kSize));
  EXPECT_EQ(requests[0].headers["content-type"], "application/zip");
  EXPECT_EQ(requests[0].headers.count("expect"), 0u);
  EXPECT_LT(peak - before, 16 * 1024) << "resident memory grew by " << (peak - before) << " KiB";
}

TEST_F(HttpClientTest, LogsAndMessagesNeverCarrySecretsOrSignatures) {
  const std::string secret = "5f1c3a9e-aaaa-bbbb-cccc-0123456789ab";
  const std::string signature = "X-Amz-Signature=f00dfeedcafe";
  Server server([](const Request& r) {
    if (r.target.find("/fail/") != std::string::npos) return Answer(503, "Service Unavailable");
    return Answer(403, "Forbidden");
  });
  std::string log_text;
  std::vector<std::string> messages;
  {
    testing_log::LogCapture capture;
    FakeTime time;
    HttpClient client(time.Options());
    RetryPolicy policy{3, milliseconds(1), milliseconds(2), std::chrono::seconds(60)};
    for (const std::string& path : {"/fail/submission_input/1/2/" + secret + "/?" + signature,
                                    "/deny/out.zip?" + signature + "&sig=" + secret}) {
      HttpRequest req;
      req.method = "PUT";
      req.url = server.Url(path);
      auto got = client.Send(req, policy);
      ASSERT_FALSE(got.ok());
      messages.push_back(got.status().message());
    }
    HttpRequest refused;
    refused.url = "http://127.0.0.1:1/submission_input/1/2/" + secret + "/?" + signature;
    auto got = client.Send(refused, policy);
    ASSERT_FALSE(got.ok());
    messages.push_back(got.status().message());
    log_text = capture.text();
  }
  EXPECT_NE(log_text.find("trying again"), std::string::npos) << log_text;
  EXPECT_NE(log_text.find("/submission_input/1/2/***/"), std::string::npos) << log_text;
  for (const std::string& text : messages) {
    EXPECT_EQ(text.find(secret), std::string::npos) << text;
    EXPECT_EQ(text.find("f00dfeedcafe"), std::string::npos) << text;
  }
  EXPECT_EQ(log_text.find(secret), std::string::npos) << log_text;
  EXPECT_EQ(log_text.find("f00dfeedcafe"), std::string::npos) << log_text;
}

}  // namespace
}  // namespace cw

namespace cw {
namespace {

TEST_F(HttpClientTest, ACancelledJobStopsRetryingAtOnce) {
  Server server([&](const Request&) { return Answer(503, "Service Unavailable"); });
  std::vector<milliseconds> sleeps;
  HttpClientOptions o;
  std::atomic<bool> revoked{false};
  o.sleep = [&](milliseconds d) {
    sleeps.push_back(d);
    revoked = true;  // revoked during the first wait
  };
  HttpClient client(o);
  HttpRequest req;
  req.method = "PATCH";
  req.url = server.Url("/api/submissions/1/");
  req.action = "status update";
  req.server = "the site";
  AbandonScope scope([&] { return revoked.load(); });
  auto got = client.Send(req, RetryPolicy{8, milliseconds(10000), milliseconds(30000),
                                          std::chrono::seconds(300)});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kCancelled) << got.status().ToString();
  EXPECT_NE(got.status().message().find("abandoned"), std::string::npos);
  EXPECT_EQ(server.request_count(), 1u);
  // One short step of the 10 s wait, not the wait itself.
  ASSERT_EQ(sleeps.size(), 1u);
  EXPECT_EQ(sleeps[0], milliseconds(200));
}

TEST_F(HttpClientTest, ACancelledJobsDownloadStopsMidway) {
  std::atomic<bool> revoked{false};
  // A slow body: the download is still running when the job is revoked.
  Server server([&](const Request&) {
    Response r = Answer(200, "OK", std::string(1 << 20, 'x'));
    r.delay_per_chunk = milliseconds(50);
    return r;
  });
  HttpClient client;
  HttpRequest req;
  req.url = server.Url("/bundle.zip");
  req.download_to = dir_ / "bundle.zip";
  std::thread revoker([&] {
    std::this_thread::sleep_for(milliseconds(300));
    revoked = true;
  });
  AbandonScope scope([&] { return revoked.load(); });
  auto t0 = std::chrono::steady_clock::now();
  auto got = client.Send(req, RetryPolicy{});
  revoker.join();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kCancelled) << got.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_FALSE(fs::exists(req.download_to));
  EXPECT_FALSE(fs::exists(dir_ / "bundle.zip.part"));
}

TEST_F(HttpClientTest, OutsideAJobNothingIsAbandoned) {
  EXPECT_FALSE(AbandonScope::Active());
  EXPECT_FALSE(AbandonScope::Abandoned());
  {
    AbandonScope outer([] { return false; });
    {
      AbandonScope inner([] { return true; });
      EXPECT_TRUE(AbandonScope::Abandoned());
    }
    EXPECT_TRUE(AbandonScope::Active());
    EXPECT_FALSE(AbandonScope::Abandoned());
  }
  EXPECT_FALSE(AbandonScope::Active());
}

}  // namespace
}  // namespace cw
