#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cw::metrics {

namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

const char* Reason(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace

Result<ListenAddress> ParseListenAddress(const std::string& address) {
  ListenAddress out;
  std::string rest = address;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return InvalidInput("METRICS_ADDRESS '" + address + "' is not [IPv6]:PORT");
    }
    out.host = rest.substr(1, close - 1);
    out.port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return InvalidInput("METRICS_ADDRESS '" + address + "' is not HOST:PORT (e.g. 127.0.0.1:9464)");
    }
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  }
  bool digits = !out.port.empty() && out.port.size() <= 5;
  for (char c : out.port) digits = digits && c >= '0' && c <= '9';
  if (!digits || std::stoi(out.port) > 65535) {
    return InvalidInput("METRICS_ADDRESS '" + address + "': the port must be a number 0-65535");
  }
  if (out.host.empty()) {
    return InvalidInput("METRICS_ADDRESS '" + address +
                        "': give the host to listen on (127.0.0.1 for this machine only)");
  }
  return out;
}

HttpServer::HttpServer(std::map<std::string, HttpHandler> handlers, HttpServerOptions options)
    : handlers_(std::move(handlers)), options_(options) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& address) {
  auto parsed = ParseListenAddress(address);
  if (!parsed.ok()) return parsed.status();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(parsed->host.c_str(), parsed->port.c_str(), &hints, &found); rc != 0) {
    return InvalidInput("METRICS_ADDRESS '" + address + "': " + gai_strerror(rc));
  }
  std::string error = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
      error = std::strerror(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
      port_ = bound.ss_family == AF_INET6
                  ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(found);
  if (listen_fd_ < 0) {
    return Unavailable("cannot listen on METRICS_ADDRESS " + address + ": " + error);
  }
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

Status HttpServer::StartUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidInput("the socket path " + path + " is longer than a unix socket allows (" +
                        std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return IoError(std::string("cannot make a unix socket: ") + std::strerror(errno));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
    Status st = IoError("cannot listen on " + path + ": " + std::strerror(errno));
    close(fd);
    return st;
  }
  listen_fd_ = fd;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

void HttpServer::Loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int rc = poll(&p, 1, 200);  // wakes to see stop_
    if (rc <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    try {
      Serve(fd);
    } catch (const std::exception& e) {
      spdlog::warn("metrics server: {}", e.what());
    }
    close(fd);
  }
}

void HttpServer::Serve(int fd) {
  const Clock::time_point deadline = Clock::now() + options_.io_timeout;
  std::string request;
  HttpResponse response;
  bool complete = false;
  char buf[2048];
  while (!complete) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, MsLeft(deadline)) <= 0) return;  // too slow: just close
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    request.append(buf, static_cast<std::size_t>(n));
    complete = request.find("\r\n\r\n") != std::string::npos ||
               request.find("\n\n") != std::string::npos;
    if (!complete && request.size() > options_.max_request_bytes) {
      response = {431, "text/plain; charset=utf-8", "request too large\n"};
      break;
    }
  }
  if (complete) response = Answer(request);
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      response.code, Reason(response.code), response.content_type, response.body.size());
  out += response.body;
  std::size_t sent = 0;
  while (sent < out.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, MsLeft(deadline)) <= 0) return;
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
}

HttpResponse HttpServer::Answer(const std::string& request) const {
  const std::string line = request.substr(0, request.find_first_of("\r\n"));
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    return {400, "text/plain; charset=utf-8", "bad request\n"};
  }
  const std::string method = line.substr(0, sp1);
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  auto it = handlers_.find(path);
  if (it == handlers_.end()) return {404, "text/plain; charset=utf-8", "not found\n"};
  if (method != "GET") return {405, "text/plain; charset=utf-8", "GET only\n"};
  return it->second();
}

}  // namespace cw::metrics
