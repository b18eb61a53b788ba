// A tiny HTTP/1.1 server for /metrics, /healthz and /readyz, on a thread of its
// own. GET only, a bounded request, a deadline for each connection,
// "Connection: close" on every answer: enough for a Prometheus scrape and a
// health probe, and nothing a stranger could use to hold the worker up. One
// thread polls every connection at once, so hundreds of idle or slow ones do
// not delay the others; past max_connections the oldest is dropped for the
// newest (a probe sends its request at once, an idle connection does not).
// Paths in token_paths answer only a request with "Authorization: Bearer
// <token>" (and not at all while no token is set).
//
// Threads: construct, Start and Stop from one thread; the handlers run on the
// server's thread, one at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"

namespace cw::metrics {

struct HttpResponse {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Answers GET on one path.
using HttpHandler = std::function<HttpResponse()>;

struct HttpServerOptions {
  std::size_t max_request_bytes = 8192;  // the request line and headers
  std::chrono::milliseconds io_timeout{5000};  // a connection's whole life
  std::size_t max_connections = 512;
  std::string token;                  // for token_paths; empty: they are not served
  std::set<std::string> token_paths;  // e.g. "/status"
};

// "HOST:PORT" or "[IPv6]:PORT" (port 0: any free port).
struct ListenAddress {
  std::string host;
  std::string port;
};
Result<ListenAddress> ParseListenAddress(const std::string& address);

class HttpServer {
 public:
  explicit HttpServer(std::map<std::string, HttpHandler> handlers, HttpServerOptions options = {});
  ~HttpServer();

  // Binds and listens on `address`, then serves on its own thread.
  Status Start(const std::string& address);
  // The same on a unix socket at `path`, which must not exist; the caller
  // owns the file (its mode, and removing it).
  Status StartUnix(const std::string& path);
  void Stop();
  // The port it listens on (after Start; useful with port 0).
  int port() const { return port_; }

  // One request's answer (the request line and headers, without the body):
  // the server's routing, for tests.
  HttpResponse Answer(const std::string& request) const;

 private:
  struct Connection;
  void Loop();
  // False once the connection is done (answered or broken).
  bool Read(Connection& c);
  bool Write(Connection& c);

  std::map<std::string, HttpHandler> handlers_;
  HttpServerOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cw::metrics
