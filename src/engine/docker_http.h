// HTTP/1.1 to the Docker engine over its unix socket (or tcp://), with libcurl.
// One easy handle per call, so calls from many threads need no locking.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cw {

struct HttpCall {
  std::string method = "GET";  // GET, POST, DELETE
  std::string path;            // "/containers/json?all=1", already escaped
  std::string body;            // sent as `content_type` when not empty
  std::string content_type = "application/json";

  std::chrono::milliseconds timeout{0};    // for the whole call; 0 = none
  std::chrono::seconds low_speed_time{0};  // abort after this long below 1 byte/s; 0 = off

  // Called once the final response headers are in, with the HTTP status.
  std::function<void(long status)> on_headers;
  // When set, a 2xx body is handed here piece by piece instead of being kept
  // in HttpReply::body (an error body is still kept, for its message).
  // Returning false stops the call, which then fails as Cancelled.
  std::function<bool(std::string_view)> on_body;
  // Setting it aborts the call within about a second (curl polls it).
  const std::atomic<bool>* cancel = nullptr;
  // Also aborts it within about a second once the calling thread's
  // AbandonScope says its job is abandoned (a pull for a cancelled job). Off
  // for the calls that clean up after a cancel (kill, remove).
  bool abandon_with_job = false;
};

struct HttpReply {
  long status = 0;
  std::string body;
};

// Socket URLs: "unix:///var/run/docker.sock", "/var/run/docker.sock" or
// "tcp://host:2375".
class DockerHttp {
 public:
  DockerHttp(std::string socket_url, std::chrono::seconds connect_timeout);

  // An HTTP error status is a reply, not a failed Status; a failed Status
  // means no answer: Unavailable (no engine there), Timeout or Cancelled.
  Result<HttpReply> Do(const HttpCall& call) const;

  const std::string& socket_url() const { return socket_url_; }

 private:
  std::string socket_url_;
  std::string unix_path_;  // empty for tcp
  std::string base_url_;   // "http://localhost" or "http://host:port"
  std::chrono::seconds connect_timeout_;
};

// Percent-encodes everything but unreserved characters, for query values.
std::string UrlEncode(std::string_view s);
// As UrlEncode, but keeps the '/', ':' and '@' that image names have in paths.
std::string PathEncode(std::string_view s);

}  // namespace cw
