// `codabench-worker run-local`: runs a competition bundle's phase on one
// submission, on this machine, exactly as a worker runs it for Codabench.
#pragma once

#include <filesystem>
#include <string>

#include "job/job_runner.h"

namespace cw {

struct RunLocalOptions {
  std::filesystem::path bundle;
  std::filesystem::path submission;
  std::string phase;         // "" = first
  int task = -1;             // -1 = first
  std::string image;         // "" = the bundle's docker_image
  std::filesystem::path out; // "" = ./codabench-run-local/<time>
  bool keep = false;
  PullPolicy pull = PullPolicy::kAlways;
  std::string container_socket;  // "" = from the settings
  bool color = false;
};

// Returns the process exit code: 0 when the submission was scored.
int RunLocal(const RunLocalOptions& options);

}  // namespace cw
