// `codabench-worker status`: what a running queue worker is doing, asked
// through its status socket (worker/status_socket.h) or its metrics address.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/config.h"

namespace cw {

struct StatusCommandOptions {
  std::optional<std::filesystem::path> env_file;  // where the worker's settings are
  std::string nodename;  // "" = the only worker here, else compute-worker@<hostname>
  std::string socket;    // a status socket, instead of finding one
  std::string address;   // HOST:PORT of a worker's METRICS_ADDRESS, instead
  bool json = false;
};

// 0 when a worker answered; 1 (and a one-line error) when none did.
int RunStatusCommand(const StatusCommandOptions& options);

}  // namespace cw
