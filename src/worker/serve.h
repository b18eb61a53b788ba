// `codabench-worker run`: serve a Codabench queue until SIGTERM or SIGINT.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/config.h"

namespace cw {

struct ServeOptions {
  std::optional<std::filesystem::path> env_file;  // .env to read under the environment
  std::string nodename;                           // "" = compute-worker@<hostname>
  int slots = 1;
  bool tls_verify = true;                         // BROKER_USE_SSL certificate checks
};

// Returns the process exit code.
int Serve(const ServeOptions& options);

}  // namespace cw
