// Checks the container engine every interval for /readyz and `status`, on a
// thread of its own (a hung engine must not hold up anything else).
//
// Threads: `report` is called on the checker's thread; the destructor (any
// thread) waits for a check under way to end.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/serial_executor.h"
#include "engine/docker_engine.h"

namespace cw {

class EngineChecker {
 public:
  using Report = std::function<void(bool ok, const std::string& reason)>;
  EngineChecker(const std::string& socket, Report report, std::chrono::milliseconds interval);

 private:
  DockerEngine engine_;  // used on the executor's thread only
  Report report_;
  SerialExecutor executor_{"engine check"};  // last: its task uses the above
};

}  // namespace cw
