#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

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
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// The token of an "Authorization: Bearer <token>" header; empty when none.
std::string BearerToken(const std::string& request) {
  std::size_t at = request.find('\n');
  while (at != std::string::npos) {
    std::size_t end = request.find('\n', at + 1);
    std::string line = request.substr(at + 1, end == std::string::npos ? end : end - at - 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;  // the end of the headers
    auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (colon != std::string::npos && name == "authorization") {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      if (value.size() > 7 && (value.compare(0, 7, "Bearer ") == 0 || value.compare(0, 7, "bearer ") == 0)) {
        value.erase(0, 7);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
        return value;
      }
    }
    at = end;
  }
  return "";
}

// Compared in time that does not depend on where they differ.
bool SameSecret(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  for (std::size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i]) ^
            static_cast<unsigned char>(expected[i % std::max<std::size_t>(1, expected.size())]);
  }
  return diff == 0 && !expected.empty();
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
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
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
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0) {
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

struct HttpServer::Connection {
  int fd = -1;
  Clock::time_point deadline;
  std::string in;   // the request so far
  std::string out;  // the answer, once there is one
  std::size_t sent = 0;
};

void HttpServer::Loop() {
  std::deque<Connection> conns;  // oldest first
  auto close_conn = [](Connection& c) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
  };
  std::vector<pollfd> fds;
  while (!stop_) {
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    Clock::time_point next = Clock::now() + std::chrono::milliseconds(200);  // to see stop_
    for (const Connection& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
      next = std::min(next, c.deadline);
    }
    if (poll(fds.data(), fds.size(), MsLeft(next)) < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Connection& c = conns[i];
      const short got = fds[i + 1].revents;
      bool open = true;
      if (got & (POLLERR | POLLNVAL)) {
        open = false;
      } else if (got & (POLLIN | POLLHUP)) {
        open = c.out.empty() ? Read(c) : Write(c);
      } else if (got & POLLOUT) {
        open = Write(c);
      }
      if (open && Clock::now() >= c.deadline) open = false;  // too slow: just close
      if (!open) close_conn(c);
    }
    std::erase_if(conns, [](const Connection& c) { return c.fd < 0; });
    if (fds[0].revents & POLLIN) {
      for (int accepted = 0; accepted < 64; ++accepted) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        if (conns.size() >= options_.max_connections) {
          close_conn(conns.front());
          conns.pop_front();
        }
        conns.push_back({fd, Clock::now() + options_.io_timeout, {}, {}, 0});
        // A probe's request is usually there already: answer it now.
        if (!Read(conns.back())) {
          close_conn(conns.back());
          conns.pop_back();
        }
      }
    }
  }
  for (Connection& c : conns) close_conn(c);
}

bool HttpServer::Read(Connection& c) {
  char buf[2048];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // more later
    if (n <= 0) return false;
    c.in.append(buf, static_cast<std::size_t>(n));
    const bool complete =
        c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos;
    HttpResponse response;
    if (complete) {
      try {
        response = Answer(c.in);
      } catch (const std::exception& e) {
        spdlog::warn("metrics server: {}", e.what());
        response = {500, "text/plain; charset=utf-8", "internal error\n"};
      }
    } else if (c.in.size() > options_.max_request_bytes) {
      response = {431, "text/plain; charset=utf-8", "request too large\n"};
    } else {
      continue;
    }
    std::string extra;
    if (response.code == 401) extra = "WWW-Authenticate: Bearer\r\n";
    c.out = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
        response.code, Reason(response.code), response.content_type, response.body.size(), extra);
    c.out += response.body;
    c.in.clear();
    return Write(c);
  }
}

bool HttpServer::Write(Connection& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // more later
    if (n <= 0) return false;
    c.sent += static_cast<std::size_t>(n);
  }
  shutdown(c.fd, SHUT_WR);
  return false;  // answered: done
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
  if (options_.token_paths.count(path)) {
    if (options_.token.empty()) return {404, "text/plain; charset=utf-8", "not found\n"};
    if (!SameSecret(BearerToken(request), options_.token)) {
      return {401, "text/plain; charset=utf-8", "this path needs METRICS_TOKEN as a Bearer token\n"};
    }
  }
  if (method != "GET") return {405, "text/plain; charset=utf-8", "GET only\n"};
  return it->second();
}

}  // namespace cw::metrics
