// The end of `codabench-worker run`, Celery's way: the first SIGTERM/SIGINT
// asks for a warm shutdown (no new jobs, running ones finish, report and are
// acked), a second one, SIGQUIT, or WORKER_SHUTDOWN_TIMEOUT passing turns it
// cold (running jobs stopped and left unacked for another worker).
//
// Threads: WaitForShutdown runs on the main thread and calls the hooks
// there; the signal counters are written by signal handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace cw {

struct DrainHooks {
  std::function<void()> tick;         // every poll, drained or not
  std::function<void()> begin_drain;  // once, at the first stop signal
  std::function<int()> busy;          // running jobs, their cleanups, reports still to send
  std::function<int()> running;       // running jobs
};

enum class ShutdownKind { kWarm, kCold };

// Polls every `poll` until it is time to stop; returns how. Logs the drain
// as it goes (each time what it waits for changes).
ShutdownKind WaitForShutdown(const std::atomic<int>& stop_signals, const std::atomic<bool>& quit,
                             std::optional<double> timeout_s, const DrainHooks& hooks,
                             std::chrono::milliseconds poll = std::chrono::milliseconds(100));

// "warm shutdown: waiting for 2 running jobs and 1 report to the site (...)".
std::string DrainWaitLine(int running, int busy, std::optional<double> timeout_s);

}  // namespace cw
