#include "engine/docker_http.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/abandon.h"

namespace cw {
namespace {

// A body larger than this is not an answer we can use (lists, inspects and
// error messages are far smaller); keeping it would only risk memory.
constexpr size_t kMaxBody = 64 << 20;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CallState {
  const HttpCall* call;
  HttpReply reply;
  bool headers_done = false;
  bool too_big = false;
  bool stopped = false;  // on_body asked to stop
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<CallState*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line starts a new header block (after a 1xx one).
    size_t sp = line.find(' ');
    st->reply.status = sp == std::string_view::npos ? 0 : std::atol(line.data() + sp + 1);
  } else if ((line == "\r\n" || line == "\n") && st->reply.status >= 200 && !st->headers_done) {
    st->headers_done = true;
    if (st->call->on_headers) st->call->on_headers(st->reply.status);
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<CallState*>(user);
  std::string_view chunk(data, size * n);
  bool success = st->reply.status >= 200 && st->reply.status < 300;
  if (st->call->on_body && success) {
    if (!st->call->on_body(chunk)) {
      st->stopped = true;
      return 0;
    }
  } else if (st->reply.body.size() + chunk.size() <= kMaxBody) {
    st->reply.body.append(chunk);
  } else {
    st->too_big = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return chunk.size();
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<CallState*>(user);
  if (st->call->cancel && st->call->cancel->load()) return 1;
  return st->call->abandon_with_job && AbandonScope::Abandoned() ? 1 : 0;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string Encode(std::string_view s, std::string_view keep) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::string UrlEncode(std::string_view s) { return Encode(s, ""); }
std::string PathEncode(std::string_view s) { return Encode(s, "/:@"); }

DockerHttp::DockerHttp(std::string socket_url, std::chrono::seconds connect_timeout)
    : socket_url_(std::move(socket_url)), connect_timeout_(connect_timeout) {
  GlobalInit();
  std::string_view url = socket_url_;
  if (url.rfind("tcp://", 0) == 0) {
    base_url_ = "http://" + std::string(url.substr(6));
    while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  } else {
    if (url.rfind("unix://", 0) == 0) url.remove_prefix(7);
    unix_path_ = std::string(url);
    base_url_ = "http://localhost";
  }
}

Result<HttpReply> DockerHttp::Do(const HttpCall& call) const {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Internal("curl_easy_init failed");
  CURL* c = curl.get();
  CallState st{&call, {}, false, false, false};
  char error[CURL_ERROR_SIZE] = {0};
  std::string url = base_url_ + call.path;

  // No "Expect: 100-continue" round trip for larger bodies.
  curl_slist* raw_headers = curl_slist_append(nullptr, "Expect:");
  if (!call.body.empty()) {
    raw_headers = curl_slist_append(raw_headers, ("Content-Type: " + call.content_type).c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!unix_path_.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_path_.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  // Signals and threads do not mix; timeouts then rely on curl's own clock.
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(connect_timeout_.count() * 1000));
  if (call.timeout.count() > 0) {
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  }
  if (call.low_speed_time.count() > 0) {
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(call.low_speed_time.count()));
  }
  if (call.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(call.body.size()));
  } else if (call.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  if (call.cancel || (call.abandon_with_job && AbandonScope::Active())) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &st);
  }

  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) return std::move(st.reply);

  std::string detail = error[0] ? error : curl_easy_strerror(rc);
  std::string what = call.method + " " + call.path;
  switch (rc) {
    case CURLE_ABORTED_BY_CALLBACK:
      return Cancelled(what + " was cancelled");
    case CURLE_OPERATION_TIMEDOUT:
      return Timeout("the Docker engine at " + socket_url_ + " did not finish " + what + ": " +
                     detail);
    case CURLE_WRITE_ERROR:
      if (st.stopped) return Cancelled(what + " was stopped by its reader");
      if (st.too_big) return Internal("the Docker engine's answer to " + what + " is too large");
      break;
    case CURLE_COULDNT_CONNECT:
      if (!unix_path_.empty()) {
        // curl's own text speaks of "localhost port 80"; the socket's errno
        // (missing, refused, permission denied) is what helps.
        long os_errno = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno != 0) detail = unix_path_ + ": " + std::strerror(static_cast<int>(os_errno));
      }
      [[fallthrough]];
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Unavailable("cannot reach the Docker engine at " + socket_url_ +
                         " (is dockerd running? set CONTAINER_SOCKET): " + detail);
    default:
      break;
  }
  return Unavailable("the Docker engine at " + socket_url_ + " broke off " + what + ": " + detail);
}

}  // namespace cw
