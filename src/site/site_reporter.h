// The Reporter of a queue job: statuses, checksum, errors and scores go to
// the Codabench site's API (contract §3), live output to its websockets.
// Every API call carries the submission's secret, which never appears in a
// log line or a returned message.
//
// Thread rules: every method may be called from any thread (the job's, its
// programs' output threads, the watchers'). The API calls hold no lock. mu_
// guards the live sockets and the output decoders; what is done under it
// never waits on the network (a socket's Send queues, its connecting runs
// on its own thread). Finish closes the sockets after letting mu_ go.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "report/reporter.h"
#include "site/http_client.h"
#include "site/retry.h"
#include "site/utf8.h"
#include "site/websocket.h"

namespace cw {

struct SiteReporterOptions {
  RetryPolicy retry = SiteRetryPolicy();
  bool live_logs = true;
  LiveSocketOptions socket;
  // How long Finish (and the destructor) lets the sockets flush, all together.
  std::chrono::milliseconds close_grace{3000};
};

// ws(s)://<host[:port] of the API URL>/submission_input/<user_pk>/<id>/<secret>/?kind=<kind>
// (wss when the API is https).
Result<std::string> LiveLogUrl(const std::string& submissions_api_url, long long user_pk,
                               long long submission_id, const std::string& secret,
                               const std::string& kind);

class SiteReporter : public Reporter {
 public:
  SiteReporter(std::string submissions_api_url, long long submission_id, long long user_pk,
               std::string secret, bool is_scoring, const HttpClient& http,
               SiteReporterOptions options = {});
  ~SiteReporter() override;  // Finish()

  // PATCH {api}/submissions/{id}/ with status, status_details (left out when
  // empty, as the Python worker's None is) and secret, form-encoded.
  Status UpdateStatus(JobStatus status, const std::string& details) override;
  // The same PATCH with md5 and secret.
  Status ReportMd5(const std::string& md5_hex) override;
  // The same PATCH with type, error_message, is_scoring ("True"/"False"), secret.
  Status ReportError(ErrorType type, const std::string& message, bool is_scoring) override;
  // POST {api}/upload_submission_scores/{id}/ with {"secret", "scores"} as JSON.
  Status ReportScores(const nlohmann::json& scores) override;

  // To the "program" or "ingestion" socket as {"kind", "message"}; both
  // streams of a program share its socket. Never blocks; drops when the
  // socket is behind (see live_queue.h).
  void Log(ProgramKind kind, LogStream stream, std::string_view chunk) override;
  // {"kind": "stderr", "message"} on the error_logs socket.
  void LiveError(const std::string& message) override;
  // {"kind": "detailed_result_update"} on the detailed_results socket.
  void DetailedResultsUpdated() override;

  // Flushes the sockets for at most close_grace together and closes them.
  // Live output after this is dropped. Idempotent.
  void Finish();

 private:
  Status Patch(std::vector<std::pair<std::string, std::string>> fields, const std::string& action);
  // The call's outcome with the secret masked, should the site's answer echo it.
  Status Scrub(Status status) const;
  // The socket for `query_kind`, opened on first use; null when live output is off.
  LiveSocket* Socket(const std::string& query_kind, const std::string& message_kind)
      REQUIRES(mu_);

  const std::string api_url_;
  const long long submission_id_;
  const long long user_pk_;
  const std::string secret_;
  const bool is_scoring_;
  const HttpClient& http_;
  const SiteReporterOptions options_;

  Mutex mu_;
  bool finished_ GUARDED_BY(mu_) = false;
  bool live_off_logged_ GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<LiveSocket>> sockets_ GUARDED_BY(mu_);  // by query kind
  std::map<std::pair<ProgramKind, LogStream>, Utf8StreamSanitizer> decoders_ GUARDED_BY(mu_);
};

}  // namespace cw
