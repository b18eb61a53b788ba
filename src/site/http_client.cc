#include "site/http_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <random>
#include <system_error>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/abandon.h"
#include "common/thread_annotations.h"
#include "site/url.h"
#include "site/utf8.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// What the libcurl callbacks of one call share.
struct Transfer {
  CURL* curl = nullptr;
  std::string body;
  std::FILE* out = nullptr;  // the download's .part file
  int out_errno = 0;
  std::uint64_t written = 0;  // body bytes written to `out`
  std::FILE* in = nullptr;  // the upload's source
  int in_errno = 0;
  std::optional<long> retry_after_s;
};

bool Is2xx(long status) { return status >= 200 && status <= 299; }

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * count;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->out && Is2xx(status)) {
    if (std::fwrite(data, 1, len, t->out) != len) {
      t->out_errno = errno ? errno : EIO;
      return 0;  // libcurl ends the call with CURLE_WRITE_ERROR
    }
    t->written += len;
    return len;
  }
  // Error answers and small bodies are kept, up to the cap; the rest is read
  // and dropped so the connection ends cleanly.
  std::size_t room = HttpResponse::kMaxBody - std::min(t->body.size(), HttpResponse::kMaxBody);
  t->body.append(data, std::min(room, len));
  return len;
}

std::size_t OnUploadRead(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = std::fread(buffer, 1, size * count, t->in);
  if (n == 0 && std::ferror(t->in)) {
    t->in_errno = errno ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  return n;
}

// libcurl rewinds the body when it must send it again (a redirect, a
// connection that was reset before the answer).
int OnUploadSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  return ::fseeko(t->in, static_cast<off_t>(offset), origin) == 0 ? CURL_SEEKFUNC_OK
                                                                   : CURL_SEEKFUNC_CANTSEEK;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * count;
  std::string_view line(data, len);
  // A new status line starts a new answer (after a redirect or a 100).
  if (line.rfind("HTTP/", 0) == 0) t->retry_after_s.reset();
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string head(line.substr(0, kName.size()));
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (head == kName) {
      std::string value(line.substr(kName.size()));
      value.erase(0, value.find_first_not_of(" \t"));
      // Only delta-seconds; an HTTP date is rare from storage and the site.
      if (!value.empty() && std::isdigit(static_cast<unsigned char>(value[0]))) {
        try {
          t->retry_after_s = std::stol(value);
        } catch (const std::exception&) {
        }
      }
    }
  }
  return len;
}

// A 2xx download is whole when it has every byte its Content-Length
// announced (libcurl checks this too; the count here does not depend on how a
// connection ended) and, when asked, at least one.
Status WholeBody(CURL* curl, const HttpRequest& req, const Transfer& t) {
  curl_off_t announced = -1;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
  if (announced >= 0 && t.written != static_cast<std::uint64_t>(announced)) {
    return Unavailable(req.server + " sent " + std::to_string(t.written) + " of the " +
                       std::to_string(announced) + " bytes it announced for the " + req.action +
                       " (the connection ended early)");
  }
  if (req.refuse_empty_download && t.written == 0) {
    return Unavailable(req.server + " answered the " + req.action +
                       " with an empty file, and this file is never empty");
  }
  return Status::Ok();
}

// One attempt's outcome, with whether trying again could help.
struct Attempt {
  std::optional<HttpResponse> response;
  Status error;
  bool transient = false;
  std::optional<long> retry_after_s;
};

// libcurl's words for a failure, with the request's URL (should libcurl ever
// quote it) swapped for its redacted form.
std::string CurlErrorText(CURLcode code, const char* errbuf, const std::string& url) {
  std::string text = errbuf[0] ? errbuf : curl_easy_strerror(code);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!url.empty()) {
    for (std::size_t at = text.find(url); at != std::string::npos; at = text.find(url, at)) {
      text.replace(at, url.size(), RedactUrl(url));
    }
    std::size_t q = url.find('?');
    if (q != std::string::npos && q + 1 < url.size()) {
      std::string query = url.substr(q + 1);
      for (std::size_t at = text.find(query); at != std::string::npos; at = text.find(query, at)) {
        text.replace(at, query.size(), "[redacted]");
      }
    }
  }
  return text;
}

Attempt TransportFailure(CURLcode code, const std::string& detail, const HttpRequest& req,
                         const Transfer& t) {
  Attempt a;
  const std::string reach = "could not reach " + req.server + " for the " + req.action + ": ";
  switch (code) {
    case CURLE_WRITE_ERROR:
      if (t.out_errno) {
        a.error = IoError("cannot write " + req.download_to.string() + ".part: " + ErrnoText(t.out_errno));
        return a;
      }
      break;
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
      if (t.in_errno) {
        a.error = IoError("cannot read " + req.upload_from.string() + ": " + ErrnoText(t.in_errno));
        return a;
      }
      break;
    case CURLE_OPERATION_TIMEDOUT:
      a.error = Timeout(reach + detail);
      a.transient = true;
      return a;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_AGAIN:
      a.error = Unavailable(reach + detail);
      a.transient = true;
      return a;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      a.error = InvalidInput("cannot use the URL " + RedactUrl(req.url) + " for the " + req.action +
                             ": " + detail);
      return a;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      a.error = Unavailable(reach + "its TLS certificate could not be verified: " + detail);
      return a;
    default:
      break;
  }
  a.error = Unavailable(reach + detail);
  return a;
}

// The options every call shares: where, timeouts, TLS, and the callbacks.
void SetCommonOptions(CURL* curl, const HttpRequest& req, const HttpClientOptions& o,
                      Transfer& t, char* errbuf) {
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM in a threaded process
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, o.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::chrono::milliseconds(o.connect_timeout).count()));
  const bool transfer = !req.upload_from.empty() || !req.download_to.empty();
  if (transfer) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout.count()));
  } else {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::chrono::milliseconds(o.request_timeout).count()));
  }
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, o.verify_tls ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, o.verify_tls ? 2L : 0L);
  if (!o.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, o.ca_bundle.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
}

// Easy handles that finished a call, kept with their open connections so the
// next call to the same server (the site's API, the storage) skips the TCP and
// TLS handshakes. A handle serves one call at a time; libcurl checks that a
// kept connection is still alive before it reuses it, and closes those idle
// past its own limit (CURLOPT_MAXAGE_CONN). A process-wide pool rather than a
// shared connection cache (CURL_LOCK_DATA_CONNECT), which libcurl does not
// support across concurrent threads.
class HandlePool {
 public:
  static HandlePool& Get() {
    static HandlePool* pool = new HandlePool();  // never destroyed: used until exit
    return *pool;
  }
  CURL* Take() {
    {
      MutexLock lock(mu_);
      if (!idle_.empty()) {
        CURL* curl = idle_.back();
        idle_.pop_back();
        return curl;
      }
    }
    return curl_easy_init();
  }
  // curl_easy_reset forgets the call's options and keeps its connections.
  void Give(CURL* curl) {
    curl_easy_reset(curl);
    {
      MutexLock lock(mu_);
      if (idle_.size() < kMaxIdle) {
        idle_.push_back(curl);
        return;
      }
    }
    curl_easy_cleanup(curl);  // closes its connections: not under the lock
  }

 private:
  // More than the calls that run at once in a worker (a few per slot).
  static constexpr std::size_t kMaxIdle = 16;
  Mutex mu_;  // any thread; never held across a libcurl call
  std::vector<CURL*> idle_ GUARDED_BY(mu_);
};

class CurlHandle {
 public:
  CurlHandle() : curl_(HandlePool::Get().Take()) {}
  ~CurlHandle() {
    if (curl_) HandlePool::Get().Give(curl_);
    if (headers_) curl_slist_free_all(headers_);
  }
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
  CURL* get() const { return curl_; }
  void AddHeader(const std::string& h) { headers_ = curl_slist_append(headers_, h.c_str()); }
  curl_slist* headers() const { return headers_; }

 private:
  CURL* curl_;
  curl_slist* headers_ = nullptr;
};

class File {
 public:
  File(const fs::path& path, const char* mode) : f_(std::fopen(path.c_str(), mode)) {}
  ~File() {
    if (f_) std::fclose(f_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  std::FILE* get() const { return f_; }
  // Errors that show only when the buffer is written out (a full disk).
  int Close() {
    int rc = std::fclose(f_);
    f_ = nullptr;
    return rc == 0 ? 0 : (errno ? errno : EIO);
  }

 private:
  std::FILE* f_;
};

Status GaveUp(const HttpRequest& req) {
  return Cancelled("the " + req.action + " to " + req.server + " was abandoned: the job was cancelled");
}

// libcurl's progress callback: a transfer of a cancelled job stops, and the
// request's watcher hears how far its download is.
int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  const auto* req = static_cast<const HttpRequest*>(user);
  if (req && req->on_download_progress && dlnow >= 0) {
    try {
      req->on_download_progress(static_cast<std::uint64_t>(dlnow),
                                dltotal > 0 ? static_cast<std::uint64_t>(dltotal) : 0);
    } catch (...) {
      // Nothing may unwind through libcurl, which is C.
    }
  }
  return AbandonScope::Abandoned() ? 1 : 0;
}

// The options that depend on the method: an upload from a file (opened into
// `in`, which must outlive the transfer), a GET that follows redirects, a
// HEAD, or a body from memory.
Status SetMethodOptions(CURL* curl, CurlHandle& handle, const HttpRequest& req, Transfer& t,
                        std::optional<File>& in) {
  if (!req.upload_from.empty()) {
    in.emplace(req.upload_from, "rb");
    if (!in->get()) {
      int err = errno;
      return err == ENOENT ? NotFound("no file at " + req.upload_from.string())
                           : IoError("cannot read " + req.upload_from.string() + ": " + ErrnoText(err));
    }
    struct stat st;
    if (::fstat(::fileno(in->get()), &st) != 0 || !S_ISREG(st.st_mode)) {
      return IoError(req.upload_from.string() + " is not a readable file");
    }
    t.in = in->get();
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    if (req.method != "PUT") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnUploadRead);
    curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, OnUploadSeek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
    // Without this libcurl waits up to a second for a "100 Continue" that
    // some servers never send.
    handle.AddHeader("Expect:");
  } else if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
  }
  return Status::Ok();
}

// A download's "<download_to>.part": renamed over download_to once whole,
// removed when not.
class PartFile {
 public:
  Status Open(const fs::path& download_to) {
    path_ = download_to;
    path_ += ".part";
    file_.emplace(path_, "wb");
    if (!file_->get()) return IoError("cannot create " + path_.string() + ": " + ErrnoText(errno));
    return Status::Ok();
  }
  bool open() const { return !path_.empty(); }
  std::FILE* get() const { return file_ ? file_->get() : nullptr; }

  void Discard() {
    if (path_.empty()) return;
    if (file_ && file_->get()) file_->Close();
    std::error_code ec;
    fs::remove(path_, ec);
  }
  // Closes it (a full disk shows here) and renames it to `download_to`.
  Status Commit(const fs::path& download_to) {
    if (int err = file_->Close(); err != 0) {
      Discard();
      return IoError("cannot write " + path_.string() + ": " + ErrnoText(err));
    }
    std::error_code ec;
    fs::rename(path_, download_to, ec);
    if (ec) {
      Discard();
      return IoError("cannot rename " + path_.string() + " to " + download_to.string() + ": " +
                     ec.message());
    }
    return Status::Ok();
  }

 private:
  fs::path path_;
  std::optional<File> file_;
};

Attempt Once(const HttpRequest& req, const HttpClientOptions& o) {
  InitCurlOnce();
  Attempt a;
  CurlHandle handle;
  if (!handle.get()) {
    a.error = Internal("libcurl could not start a request");
    return a;
  }
  CURL* curl = handle.get();
  Transfer t;
  t.curl = curl;
  char errbuf[CURL_ERROR_SIZE] = {0};
  SetCommonOptions(curl, req, o, t, errbuf);
  std::optional<File> in;
  if (Status st = SetMethodOptions(curl, handle, req, t, in); !st.ok()) {
    a.error = st;
    return a;
  }
  for (const auto& h : req.headers) handle.AddHeader(h);
  if (handle.headers()) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, handle.headers());

  PartFile part;
  if (!req.download_to.empty()) {
    if (Status st = part.Open(req.download_to); !st.ok()) {
      a.error = st;
      return a;
    }
    t.out = part.get();
  }
  if (AbandonScope::Active() || req.on_download_progress) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &req);
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_ABORTED_BY_CALLBACK && AbandonScope::Abandoned()) {
    part.Discard();
    a.error = GaveUp(req);
    return a;
  }
  if (rc != CURLE_OK) {
    part.Discard();
    return TransportFailure(rc, CurlErrorText(rc, errbuf, req.url), req, t);
  }
  HttpResponse response;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(t.body);
  a.retry_after_s = t.retry_after_s;
  if (part.open()) {
    if (!Is2xx(response.status)) {
      part.Discard();
    } else if (Status whole = WholeBody(curl, req, t); !whole.ok()) {
      part.Discard();
      a.error = whole;
      a.transient = true;
      return a;
    } else if (Status done = part.Commit(req.download_to); !done.ok()) {
      a.error = done;
      return a;
    }
  }
  a.response = std::move(response);
  return a;
}

std::string Between(const std::string& text, const std::string& open, const std::string& close) {
  std::size_t start = text.find(open);
  if (start == std::string::npos) return "";
  start += open.size();
  std::size_t end = text.find(close, start);
  if (end == std::string::npos) return "";
  return text.substr(start, end - start);
}

// At most `max` bytes of `text` on one line, cut at a character boundary.
std::string OneLine(const std::string& text, std::size_t max) {
  std::string clean = SanitizeUtf8(text);
  std::string out;
  bool space = false;
  for (char c : clean) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (out.size() > max) {
    out.resize(Utf8PrefixLength(out, max));
    out += "...";
  }
  return out;
}

std::string ErrorDetail(const HttpRequest& req, const std::string& body) {
  constexpr std::size_t kMax = 300;
  switch (req.error_body) {
    case ErrorBody::kNone:
      return "";
    case ErrorBody::kText:
      return OneLine(body, kMax);
    case ErrorBody::kXmlCode: {
      std::string code = OneLine(Between(body, "<Code>", "</Code>"), 100);
      std::string message = OneLine(Between(body, "<Message>", "</Message>"), kMax);
      if (code.empty()) return message;
      return message.empty() ? code : code + ": " + message;
    }
  }
  return "";
}

Status Refusal(const HttpRequest& req, const HttpResponse& response) {
  std::string message = req.server + " refused the " + req.action + ": " + HttpStatusText(response.status);
  if ((response.status == 401 || response.status == 403) && !req.forbidden_hint.empty()) {
    message += " (" + req.forbidden_hint + ")";
  }
  std::string detail = ErrorDetail(req, response.body);
  if (!detail.empty()) message += ": " + detail;
  return Status(CodeForHttpStatus(response.status), message);
}

std::string Seconds(std::chrono::steady_clock::duration d) {
  double s = std::chrono::duration<double>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f" : "%.0f", s);
  return buf;
}

}  // namespace

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
  if (!options_.now) options_.now = [] { return std::chrono::steady_clock::now(); };
  if (!options_.unit_random) {
    options_.unit_random = [] {
      thread_local std::mt19937_64 engine{std::random_device{}()};
      return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
    };
  }
}

Result<HttpResponse> HttpClient::Perform(const HttpRequest& request) const {
  Attempt a = Once(request, options_);
  if (a.response) return std::move(*a.response);
  return a.error;
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request, const RetryPolicy& policy) const {
  const auto start = options_.now();
  const int max_attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1;; ++attempt) {
    if (AbandonScope::Abandoned()) return GaveUp(request);
    Attempt a = Once(request, options_);
    std::string what;
    if (a.response) {
      if (Is2xx(a.response->status)) return std::move(*a.response);
      if (!IsTransientHttpStatus(a.response->status)) return Refusal(request, *a.response);
      what = request.server + " answered the " + request.action + " with " +
             HttpStatusText(a.response->status);
    } else {
      if (!a.transient) return a.error;
      what = a.error.message();
    }

    auto delay = BackoffDelay(policy, attempt, options_.unit_random());
    if (a.retry_after_s) {
      auto asked = std::chrono::milliseconds(*a.retry_after_s * 1000);
      delay = std::max(delay, std::min(asked, policy.max_delay));
    }
    const auto elapsed = options_.now() - start;
    if (attempt >= max_attempts || elapsed + delay > policy.max_total) {
      return Unavailable(what + " (gave up after " + std::to_string(attempt) +
                         (attempt == 1 ? " attempt" : " attempts") + " in " + Seconds(elapsed) + " s)");
    }
    spdlog::warn("{} {}: {} (attempt {}/{}); trying again in {} s", request.method,
                 RedactUrl(request.url), what, attempt, max_attempts, Seconds(delay));
    if (!AbandonScope::Active()) {
      options_.sleep(delay);
      continue;
    }
    // A job's call: wait in short steps, so a revoke frees its slot at once.
    for (auto left = delay; left.count() > 0 && !AbandonScope::Abandoned();) {
      auto step = std::min(left, std::chrono::milliseconds(200));
      options_.sleep(step);
      left -= step;
    }
  }
}

}  // namespace cw
