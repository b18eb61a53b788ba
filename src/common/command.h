// Runs a helper program (nvidia-smi, mkfs.ext4) with a time limit and collects what it
// prints. Injectable, so tests never depend on what the machine has installed.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace cw {

struct CommandOutput {
  int exit_code = 0;   // 128 + signal number when killed by a signal
  std::string output;  // stdout and stderr together, capped (see RunCommand)
};

using CommandRunner = std::function<Result<CommandOutput>(const std::vector<std::string>& argv,
                                                          std::chrono::milliseconds timeout)>;

// Looks argv[0] up in PATH. NotFound when the program is not installed,
// Timeout (after killing it) when it runs past `timeout`. Output beyond 1 MiB
// is dropped: the callers parse a few lines, and a runaway program must not
// grow the worker's memory.
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout);

}  // namespace cw
