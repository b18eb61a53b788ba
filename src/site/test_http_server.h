// A tiny HTTP/1.1 server on 127.0.0.1 for this folder's tests: one thread,
// one connection at a time, "Connection: close" answers (or, with
// keep_alive, answers that leave the connection open for the next request,
// and a count of the connections). Each request goes to
// a handler that says what to answer (or to hang up without an answer).
// Bodies are read in 64 KiB pieces and kept only up to a limit, so a large
// upload costs the test process no memory.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"

namespace cw::testing_http {

struct Request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                             // up to the server's keep limit
  std::uint64_t body_bytes = 0;                 // all of it
};

struct Response {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Claim this Content-Length but send only `body`, then hang up.
  std::uint64_t claimed_length = 0;
  // Hang up without answering.
  bool hang_up = false;
  // Send the body in 16 KiB pieces with this pause before each: a slow server.
  std::chrono::milliseconds delay_per_chunk{0};
};

class Server {
 public:
  using Handler = std::function<Response(const Request&)>;

  explicit Server(Handler handler, std::size_t keep_body_bytes = 1 << 20, bool keep_alive = false)
      : handler_(std::move(handler)), keep_(keep_body_bytes), keep_alive_(keep_alive) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }

  ~Server() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Request> requests() const {
    MutexLock lock(mu_);
    return requests_;
  }
  std::size_t request_count() const {
    MutexLock lock(mu_);
    return requests_.size();
  }
  int connection_count() const { return connections_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      while (Serve(fd) && keep_alive_ && !stop_) {
      }
      ::close(fd);
    }
  }

  // Reads into `buffer` until it holds "\r\n\r\n"; false when the client left.
  bool ReadHead(int fd, std::string& buffer) {
    char chunk[4096];
    while (buffer.find("\r\n\r\n") == std::string::npos) {
      // A kept-alive connection may stay idle: look at stop_ meanwhile.
      pollfd p{fd, POLLIN, 0};
      int ready = ::poll(&p, 1, 50);
      if (stop_) return false;
      if (ready <= 0) continue;
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    return true;
  }

  static void SendAll(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  // One request and its answer; true when the connection may serve another.
  bool Serve(int fd) {
    std::string buffer;
    if (!ReadHead(fd, buffer)) return false;
    std::size_t head_end = buffer.find("\r\n\r\n");
    std::string head = buffer.substr(0, head_end);
    std::string rest = buffer.substr(head_end + 4);

    Request req;
    std::size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    std::size_t sp1 = first.find(' ');
    std::size_t sp2 = first.find(' ', sp1 + 1);
    req.method = first.substr(0, sp1);
    req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        req.headers[name] = value;
      }
      pos = end + 2;
    }
    if (req.headers.count("expect")) SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");

    std::uint64_t length = 0;
    if (req.headers.count("content-length")) length = std::stoull(req.headers["content-length"]);
    auto take = [&](const char* data, std::size_t n) {
      req.body_bytes += n;
      if (req.body.size() < keep_) req.body.append(data, std::min(n, keep_ - req.body.size()));
    };
    take(rest.data(), std::min<std::uint64_t>(rest.size(), length));
    std::vector<char> chunk(64 * 1024);
    while (req.body_bytes < length) {
      ssize_t n = ::recv(fd, chunk.data(),
                         static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), length - req.body_bytes)), 0);
      if (n <= 0) break;
      take(chunk.data(), static_cast<std::size_t>(n));
    }

    Response resp = handler_(req);
    {
      MutexLock lock(mu_);
      requests_.push_back(std::move(req));
    }
    if (resp.hang_up) return false;
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + resp.reason + "\r\n";
    for (const auto& [name, value] : resp.headers) out += name + ": " + value + "\r\n";
    std::uint64_t claimed = resp.claimed_length ? resp.claimed_length : resp.body.size();
    out += "Content-Length: " + std::to_string(claimed) + "\r\n";
    const bool keep_open = keep_alive_ && !resp.claimed_length;
    out += keep_open ? "\r\n" : "Connection: close\r\n\r\n";
    SendAll(fd, out);
    if (resp.delay_per_chunk.count() > 0) {
      for (std::size_t at = 0; at < resp.body.size() && !stop_; at += 16384) {
        std::this_thread::sleep_for(resp.delay_per_chunk);
        std::string piece = resp.body.substr(at, 16384);
        if (::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(piece.size())) {
          return false;
        }
      }
    } else {
      SendAll(fd, resp.body);
    }
    if (keep_open) return true;
    ::shutdown(fd, SHUT_WR);
    return false;
  }

  Handler handler_;
  std::size_t keep_;
  bool keep_alive_;
  std::atomic<int> connections_{0};
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable Mutex mu_;
  std::vector<Request> requests_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace cw::testing_http
