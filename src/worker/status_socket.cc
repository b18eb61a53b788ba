#include "worker/status_socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// A connected, non-blocking socket, or errno's reason (ECONNREFUSED etc.
// kept in *err for the caller's wording).
int ConnectWithin(const sockaddr* addr, socklen_t len, int family,
                  std::chrono::milliseconds timeout, int* err) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (connect(fd, addr, len) == 0) return fd;
  if (errno != EINPROGRESS && errno != EAGAIN) {
    *err = errno;
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int rc = poll(&p, 1, static_cast<int>(timeout.count()));
  int so_error = 0;
  socklen_t so_len = sizeof so_error;
  if (rc <= 0) {
    *err = ETIMEDOUT;
  } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0) {
    *err = errno;
  } else if (so_error != 0) {
    *err = so_error;
  } else {
    return fd;
  }
  close(fd);
  return -1;
}

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidInput("the socket path " + path + " is longer than a unix socket allows");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  return addr;
}

Result<int> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout) {
  CW_ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  int err = 0;
  int fd = ConnectWithin(reinterpret_cast<sockaddr*>(&addr), sizeof addr, AF_UNIX, timeout, &err);
  if (fd >= 0) return fd;
  if (err == ENOENT) return Unavailable("no worker is running here: there is no " + path);
  if (err == ECONNREFUSED) {
    return Unavailable("no worker is running here: " + path +
                       " is left from a worker that stopped (connection refused)");
  }
  if (err == EACCES) {
    return Unavailable("cannot open " + path +
                       ": permission denied (run status as the worker's user)");
  }
  return Unavailable("cannot reach the worker at " + path + ": " + ErrnoText(err));
}

Result<int> ConnectTcp(const std::string& address, std::chrono::milliseconds timeout) {
  auto parsed = metrics::ParseListenAddress(address);
  if (!parsed.ok()) {
    return InvalidInput("--address '" + address + "' is not HOST:PORT (e.g. 127.0.0.1:9464)");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(parsed->host.c_str(), parsed->port.c_str(), &hints, &found); rc != 0) {
    return Unavailable("cannot resolve " + address + ": " + gai_strerror(rc));
  }
  int err = ECONNREFUSED;
  int fd = -1;
  for (addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next) {
    fd = ConnectWithin(ai->ai_addr, ai->ai_addrlen, ai->ai_family, timeout, &err);
  }
  freeaddrinfo(found);
  if (fd >= 0) return fd;
  return Unavailable("no worker answers at " + address + ": " + ErrnoText(err));
}

}  // namespace

std::string NodeFolderName(const std::string& nodename) {
  std::string out;
  for (char c : nodename) {
    bool plain =
        std::isalnum(static_cast<unsigned char>(c)) || c == '@' || c == '.' || c == '-' || c == '_';
    out.push_back(plain ? c : '_');
  }
  return out.empty() || out == "." || out == ".." ? "node" : out;
}

fs::path StatusSocketFolder(const fs::path& base_dir) { return base_dir / "status"; }

fs::path StatusSocketPath(const fs::path& base_dir, const std::string& nodename) {
  return StatusSocketFolder(base_dir) / (NodeFolderName(nodename) + ".sock");
}

StatusSocket::StatusSocket(fs::path path, metrics::HttpHandler status)
    : path_(std::move(path)), server_({{"/status", std::move(status)}}) {}

Result<std::unique_ptr<StatusSocket>> StatusSocket::Open(const fs::path& path,
                                                         metrics::HttpHandler status) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return IoError("cannot create " + path.parent_path().string() + ": " + ec.message());
  // The status names submissions and tasks: only the worker's user reads it.
  chmod(path.parent_path().c_str(), 0700);

  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return InvalidInput(path.string() + " exists and is not a socket: it is left alone");
    }
    auto fd = ConnectUnix(path.string(), std::chrono::milliseconds(1000));
    if (fd.ok()) {
      close(*fd);
      return Unavailable("another live worker answers on " + path.string() +
                         " (the same node name?)");
    }
    // Nobody listens: a killed worker's leftover.
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return IoError("cannot remove the stale " + path.string() + ": " + ErrnoText(errno));
    }
    spdlog::info("removed {}, left by a worker that stopped", path.string());
  }
  std::unique_ptr<StatusSocket> out(new StatusSocket(path, std::move(status)));
  CW_RETURN_IF_ERROR(out->server_.StartUnix(path.string()));
  chmod(path.c_str(), 0600);
  if (lstat(path.c_str(), &st) == 0) {
    out->device_ = st.st_dev;
    out->inode_ = st.st_ino;
  }
  return out;
}

StatusSocket::~StatusSocket() {
  server_.Stop();
  // A worker started since (after a stale check of ours) owns a new file.
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == device_ && st.st_ino == inode_) {
    unlink(path_.c_str());
  }
}

Result<nlohmann::json> FetchStatus(const StatusTarget& target, const StatusClientOptions& options) {
  Result<int> connected = target.socket_path.empty()
                              ? ConnectTcp(target.address, options.connect_timeout)
                              : ConnectUnix(target.socket_path, options.connect_timeout);
  if (!connected.ok()) return connected.status();
  Fd fd(*connected);
  const std::string where = target.socket_path.empty() ? target.address : target.socket_path;
  const Clock::time_point deadline = Clock::now() + options.read_timeout;
  std::string request = "GET /status HTTP/1.1\r\nHost: codabench-worker\r\nConnection: close\r\n";
  if (!options.token.empty()) request += "Authorization: Bearer " + options.token + "\r\n";
  request += "\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    pollfd p{fd.get(), POLLOUT, 0};
    if (poll(&p, 1, MsLeft(deadline)) <= 0) {
      return Unavailable("the worker at " + where + " did not take the request in time");
    }
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return Unavailable("the worker at " + where + " closed the connection");
    sent += static_cast<std::size_t>(n);
  }
  std::string answer;
  char buf[8192];
  while (true) {
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, MsLeft(deadline)) <= 0) {
      return Unavailable("the worker at " + where + " did not answer within " +
                         std::to_string(options.read_timeout.count() / 1000.0).substr(0, 4) + " s");
    }
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return Unavailable("reading from " + where + ": " + ErrnoText(errno));
    if (n == 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
    if (answer.size() > options.max_answer_bytes) {
      return Unavailable("the answer from " + where + " is larger than expected");
    }
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nBODY"
  auto head_end = answer.find("\r\n\r\n");
  int code = 0;
  if (answer.rfind("HTTP/1.", 0) == 0 && answer.size() > 12) {
    code = std::atoi(answer.c_str() + 9);
  }
  if (head_end == std::string::npos || code == 0) {
    return Unavailable(where + " did not answer as a codabench-worker does");
  }
  std::string body = answer.substr(head_end + 4);
  if (code == 404) {
    return Unavailable(where + " answers, but has no /status (a worker without METRICS_TOKEN "
                       "serves it only on its status socket)");
  }
  if (code == 401) {
    return Unavailable(where + " wants the worker's METRICS_TOKEN" +
                       (options.token.empty() ? std::string(" (give --env-file, or set it)")
                                              : std::string(", and the one given is not it")));
  }
  if (code != 200) {
    return Unavailable(where + " answered HTTP " + std::to_string(code) + ": " +
                       body.substr(0, body.find('\n')));
  }
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return Unavailable(where + " answered /status with something that is not JSON");
  }
  return json;
}

}  // namespace cw
