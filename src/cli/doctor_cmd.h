// `codabench-worker doctor`: the checks of doctor/doctor.h with the real
// engine, GPU discovery and broker, printed one line each.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/config.h"

namespace cw {

struct DoctorCommandOptions {
  std::optional<std::filesystem::path> env_file;
  EnvMap overrides;  // command-line options, as for `run`
  std::string image = "codalab/codalab-legacy:py37";
  bool tls_verify = true;
};

// 0 when nothing failed (warnings allowed), 1 otherwise.
int RunDoctorCommand(const DoctorCommandOptions& options);

}  // namespace cw
