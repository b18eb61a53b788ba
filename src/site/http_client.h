// HTTP(S) calls to the Codabench site and to signed storage URLs, with
// libcurl. One easy handle per call, so any thread may call at any time.
// Every call has timeouts; TLS is verified unless the admin turns it off.
// URLs reach logs and messages only through RedactUrl.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "site/retry.h"

namespace cw {

struct HttpResponse {
  long status = 0;
  std::string body;  // capped at kMaxBody; empty when the body went to a file
  static constexpr std::size_t kMaxBody = 64 * 1024;
};

// How much of a refusal's body goes into the failure message.
enum class ErrorBody {
  kNone,
  kText,     // the answer as text, cut at 300 characters (the site's API)
  kXmlCode,  // <Code> and <Message> of an S3/GCS/Azure XML error, nothing else:
             // their other fields can echo the signature
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent as is, unless upload_from is set
  // Streamed from disk as the body, with its Content-Length; never read whole.
  std::filesystem::path upload_from;
  // A 2xx body goes to this file, through "<file>.part" and a rename: a
  // failed call leaves no file and no .part behind. Only a whole body counts:
  // fewer bytes than the answer's Content-Length (a connection closed early)
  // is a failed attempt, retried like a network error.
  std::filesystem::path download_to;
  // With download_to: an empty 2xx body is a failed attempt too, retried (a
  // store that answers before the object is written, a proxy that lost it).
  // For files that are never empty, such as zips.
  bool refuse_empty_download = false;
  // Hears the bytes of the body received so far and its size (0: the server
  // did not say), from libcurl's progress callback: at least once a second
  // and after each chunk. Each attempt counts from 0 again. Must not block.
  std::function<void(std::uint64_t done, std::uint64_t total)> on_download_progress;

  // For failure messages: "<server> refused the <action>: 403 Forbidden (<hint>)".
  std::string server = "the server";
  std::string action = "request";
  std::string forbidden_hint;  // added to 401 and 403 refusals
  ErrorBody error_body = ErrorBody::kNone;
};

struct HttpClientOptions {
  std::chrono::seconds connect_timeout{10};
  // Calls without a file: the whole call.
  std::chrono::seconds request_timeout{60};
  // Calls with a file have no total limit (a bundle may be gigabytes) but are
  // abandoned after this long below 1 byte/s.
  std::chrono::seconds stall_timeout{120};
  bool verify_tls = true;
  std::string ca_bundle;  // a PEM file; empty: the system's
  std::string user_agent = "codabench-worker";
  // Seams for tests of retries; the defaults sleep, read the steady clock
  // and draw from a random engine.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<double()> unit_random;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});

  // One attempt. Any HTTP answer is a response, whatever its status; a failed
  // Status means there was no (whole) answer: Unavailable or Timeout for
  // network trouble, Io for the local file, InvalidInput for a bad URL.
  Result<HttpResponse> Perform(const HttpRequest& request) const;

  // Attempts as `policy` allows until a 2xx answer, which is returned.
  // Refusals (4xx but 408 and 429) fail at once; network failures and 5xx,
  // 408, 429 are retried with backoff (a Retry-After in seconds is honoured
  // up to max_delay) and end as Unavailable when the policy runs out.
  Result<HttpResponse> Send(const HttpRequest& request, const RetryPolicy& policy) const;

  const HttpClientOptions& options() const { return options_; }

 private:
  HttpClientOptions options_;
};

}  // namespace cw
