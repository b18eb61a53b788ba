// How `codabench-worker status` reaches a running worker: a unix socket the
// worker always opens, BASE/status/<node>.sock (the folder 0700, the socket
// 0600: the status names submissions, so only the worker's user reads it),
// and, with METRICS_ADDRESS, GET /status on the metrics server. Both speak
// the same HTTP (metrics/http_server.h), so one client serves both.
//
// One socket per node name, so two workers on one host (different
// --nodename) never meet. A socket file left by a killed worker is
// replaced at the next start; one a live worker answers on is left alone.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "metrics/http_server.h"

namespace cw {

// A node name as one file or folder name: '/' and other odd characters
// become '_' (also the name of the node's jobs folder).
std::string NodeFolderName(const std::string& nodename);

// BASE/status: where the workers of one base directory keep their sockets.
std::filesystem::path StatusSocketFolder(const std::filesystem::path& base_dir);
std::filesystem::path StatusSocketPath(const std::filesystem::path& base_dir,
                                       const std::string& nodename);

class StatusSocket {
 public:
  // Listens at `path` and answers GET /status with `status` (and nothing
  // else), on a thread of its own. Unavailable when a live worker already
  // answers there; a stale socket file is removed first; anything else at
  // that path (a file, a folder) is left and refused.
  static Result<std::unique_ptr<StatusSocket>> Open(const std::filesystem::path& path,
                                                    metrics::HttpHandler status);
  // Stops serving and removes the socket file, unless another process has
  // replaced it meanwhile.
  ~StatusSocket();

  const std::filesystem::path& path() const { return path_; }

 private:
  StatusSocket(std::filesystem::path path, metrics::HttpHandler status);

  std::filesystem::path path_;
  metrics::HttpServer server_;
  unsigned long long device_ = 0, inode_ = 0;  // of the file we bound
};

struct StatusTarget {
  std::string socket_path;  // a unix socket, or
  std::string address;      // HOST:PORT of a metrics server
};

struct StatusClientOptions {
  // Sent as "Authorization: Bearer <token>" to a metrics address (the
  // worker's METRICS_TOKEN); not needed on the unix socket.
  std::string token;
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds read_timeout{5000};  // the whole answer
  std::size_t max_answer_bytes = 4 << 20;
};

// GET /status from a running worker. Unavailable, in one line for the
// admin, when nothing answers there.
Result<nlohmann::json> FetchStatus(const StatusTarget& target,
                                   const StatusClientOptions& options = {});

}  // namespace cw
