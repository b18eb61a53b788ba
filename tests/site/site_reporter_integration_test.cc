// SiteReporter and the worker's storage against a stand-in Codabench site:
// the calls a prediction and a scoring job make, in order, as the site sees
// them; and that none of it puts the secret or a signature in the logs.
#include "site/site_reporter.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_site.h"
#include "site/http_storage.h"
#include "site/test_log_capture.h"

namespace cw {
namespace {

using std::chrono::milliseconds;
using testing_site::FakeSite;
using testing_site::JoinedMessages;
using testing_site::Records;

const char kSecret[] = "9a8b7c6d-1234-4abc-8def-0123456789ab";

SiteReporterOptions Options() {
  SiteReporterOptions o;
  o.retry = RetryPolicy{3, milliseconds(50), milliseconds(200), std::chrono::seconds(10)};
  o.socket.first_backoff = milliseconds(100);
  o.close_grace = milliseconds(3000);
  return o;
}

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SiteReporterWithSite, APredictionJobAsTheSiteSeesIt) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  HttpClient http;
  {
    SiteReporter reporter(site.Url("/api"), 42, 7, kSecret, false, http, Options());
    ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kPreparing, "").ok());
    ASSERT_TRUE(reporter.ReportMd5("0cc175b9c0f1b6a831c399e269772661").ok());
    ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kRunning, "ingestion_hostname-worker1").ok());
    // A character split between chunks, and bytes that are not UTF-8 at all.
    reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "caf\xC3");
    reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "\xA9 ok\n");
    reporter.Log(ProgramKind::kProgram, LogStream::kStderr, "warn \xFF\n");
    reporter.Log(ProgramKind::kIngestion, LogStream::kStdout, "ingesting\n");
    reporter.LiveError("Execution Time Limit exceeded. Limit was 60 seconds");
    reporter.DetailedResultsUpdated();
    ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kScoring, "").ok());
    reporter.Finish();
  }
  Records records = site.Read();

  auto patches = site.Events("patch");
  ASSERT_EQ(patches.size(), 4u);
  for (auto& p : patches) {
    EXPECT_EQ(p["id"], "42");
    EXPECT_EQ(p["form"]["secret"], kSecret);
    EXPECT_EQ(p["content_type"], "application/x-www-form-urlencoded");
  }
  EXPECT_EQ(patches[0]["form"], (nlohmann::json{{"status", "Preparing"}, {"secret", kSecret}}));
  EXPECT_EQ(patches[1]["form"], (nlohmann::json{{"md5", "0cc175b9c0f1b6a831c399e269772661"}, {"secret", kSecret}}));
  EXPECT_EQ(patches[2]["form"], (nlohmann::json{{"status", "Running"},
                                                {"status_details", "ingestion_hostname-worker1"},
                                                {"secret", kSecret}}));
  EXPECT_EQ(patches[3]["form"]["status"], "Scoring");

  EXPECT_EQ(JoinedMessages(records, "program"), "caf\xC3\xA9 ok\nwarn \xEF\xBF\xBD\n");
  EXPECT_EQ(JoinedMessages(records, "ingestion"), "ingesting\n");
  auto errors = site.Events("message", "error_logs");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(errors[0]["data"].get<std::string>()),
            (nlohmann::json{{"kind", "stderr"}, {"message", "Execution Time Limit exceeded. Limit was 60 seconds"}}));
  auto detailed = site.Events("message", "detailed_results");
  ASSERT_EQ(detailed.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(detailed[0]["data"].get<std::string>()),
            (nlohmann::json{{"kind", "detailed_result_update"}}));
  for (auto& c : site.Events("connect")) {
    EXPECT_EQ(c["user"], "7");
    EXPECT_EQ(c["id"], "42");
    EXPECT_TRUE(c["secret_ok"].get<bool>());
  }
  EXPECT_EQ(site.Events("connect").size(), 4u);  // program, ingestion, error_logs, detailed_results
  EXPECT_EQ(site.Events("disconnect").size(), 4u) << "each socket closed properly";
}

TEST(SiteReporterWithSite, AScoringJobPostsItsScores) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  HttpClient http;
  SiteReporter reporter(site.Url("/api"), 42, 7, kSecret, true, http, Options());
  ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kRunning, "scoring_hostname-worker1").ok());
  ASSERT_TRUE(reporter.ReportScores(nlohmann::json{{"accuracy", 0.875}, {"auc", 1}}).ok());
  ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kFinished, "").ok());
  auto scores = site.Events("scores");
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0]["id"], "42");
  EXPECT_EQ(scores[0]["content_type"], "application/json");
  EXPECT_EQ(scores[0]["json"], (nlohmann::json{{"secret", kSecret}, {"scores", {{"accuracy", 0.875}, {"auc", 1}}}}));
}

TEST(SiteReporterWithSite, StorageRoundTripWithTheHeadersAzureNeeds) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  HttpClient http;
  auto storage = MakeWorkerStorage(http, RetryPolicy{2, milliseconds(10), milliseconds(10), std::chrono::seconds(10)});
  const auto src = site.dir() / "output.zip";
  {
    std::ofstream out(src, std::ios::binary);
    for (int i = 0; i < 50000; ++i) out << "line " << i << "\n";
  }
  ASSERT_TRUE(storage->Put(site.Url("/storage/output.zip?X-Amz-Signature=abc"), src, "application/zip").ok());
  auto puts = site.Events("put");
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0]["size"], std::filesystem::file_size(src));
  EXPECT_EQ(puts[0]["query"], "X-Amz-Signature=abc");
  EXPECT_EQ(puts[0]["headers"]["content-type"], "application/zip");
  EXPECT_EQ(puts[0]["headers"]["x-ms-blob-type"], "BlockBlob");
  EXPECT_EQ(puts[0]["headers"]["x-ms-version"], "2018-03-28");

  const auto back = site.dir() / "back.zip";
  ASSERT_TRUE(storage->Fetch(site.Url("/storage/output.zip?sig=1"), back).ok());
  EXPECT_EQ(Read(back), Read(src));
  Status missing = storage->Fetch(site.Url("/storage/nothing.zip"), site.dir() / "none.zip");
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(site.dir() / "none.zip"));
}

TEST(SiteReporterWithSite, NothingLoggedCarriesTheSecretOrASignature) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  const std::string signature = "X-Amz-Signature=0ddba11c0ffee";
  std::string log_text;
  std::vector<std::string> messages;
  {
    testing_log::LogCapture capture;
    HttpClient http;
    auto storage = MakeWorkerStorage(http, RetryPolicy{2, milliseconds(10), milliseconds(10), std::chrono::seconds(10)});
    {
      // The right secret, but the site goes away half-way.
      SiteReporter reporter(site.Url("/api"), 42, 7, kSecret, false, http, Options());
      ASSERT_TRUE(reporter.UpdateStatus(JobStatus::kRunning, "x").ok());
      reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "hello\n");
      ASSERT_TRUE(site.WaitFor([](const Records& r) { return !JoinedMessages(r, "program").empty(); }));
      site.Kill();
      reporter.Log(ProgramKind::kProgram, LogStream::kStdout, "lost\n");
      messages.push_back(reporter.UpdateStatus(JobStatus::kFailed, "boom").message());
      messages.push_back(storage->Put(site.Url("/storage/o.zip?" + signature), site.dir() / "record.jsonl",
                                      "application/zip").message());
      ASSERT_TRUE(site.Start());
    }
    {
      // A secret the site does not know.
      const std::string wrong = "00000000-dead-beef-0000-000000000000";
      SiteReporter reporter(site.Url("/api"), 42, 7, wrong, false, http, Options());
      messages.push_back(reporter.UpdateStatus(JobStatus::kRunning, "x").message());
      reporter.Log(ProgramKind::kIngestion, LogStream::kStdout, "hello\n");
      ASSERT_TRUE(site.WaitFor([](const Records& r) {
        for (auto& e : r) if (e.value("event", "") == "connect" && !e["secret_ok"].get<bool>()) return true;
        return false;
      }));
      reporter.Finish();
    }
    log_text = capture.text();
  }
  EXPECT_NE(log_text.find("/submission_input/7/42/***/"), std::string::npos) << log_text;
  EXPECT_NE(log_text.find("HTTP 403"), std::string::npos) << log_text;
  for (const auto& m : messages) {
    EXPECT_FALSE(m.empty());
    EXPECT_EQ(m.find(kSecret), std::string::npos) << m;
    EXPECT_EQ(m.find("0ddba11c0ffee"), std::string::npos) << m;
  }
  EXPECT_EQ(log_text.find(kSecret), std::string::npos) << log_text;
  EXPECT_EQ(log_text.find("00000000-dead-beef-0000-000000000000"), std::string::npos) << log_text;
  EXPECT_EQ(log_text.find("0ddba11c0ffee"), std::string::npos) << log_text;
}

}  // namespace
}  // namespace cw
