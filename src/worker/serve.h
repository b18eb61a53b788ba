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
  bool tls_verify = true;                         // BROKER_USE_SSL certificate checks
  // Command-line options given as the settings they override, e.g.
  // {"WORKER_SLOTS", "4"}, {"GPU_MAP", "0,1;2,3"}: they win over both the
  // environment and the .env file.
  EnvMap overrides;
};

// Returns the process exit code.
int Serve(const ServeOptions& options);

}  // namespace cw
