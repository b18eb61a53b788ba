#include "worker/shutdown.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace cw {

std::string DrainWaitLine(int running, int busy, std::optional<double> timeout_s) {
  const int reports = busy - running;
  return fmt::format(
      "warm shutdown: waiting for {} running job{}{} (send SIGTERM again to stop them){}", running,
      running == 1 ? "" : "s",
      reports > 0 ? fmt::format(" and {} report{} to the site", reports, reports == 1 ? "" : "s")
                  : "",
      timeout_s ? fmt::format("; at most {} s", *timeout_s) : "");
}

ShutdownKind WaitForShutdown(const std::atomic<int>& stop_signals, const std::atomic<bool>& quit,
                             std::optional<double> timeout_s, const DrainHooks& hooks,
                             std::chrono::milliseconds poll) {
  using Clock = std::chrono::steady_clock;
  bool draining = false;
  std::optional<Clock::time_point> deadline;
  int last_busy = -1;
  while (true) {
    std::this_thread::sleep_for(poll);
    if (hooks.tick) hooks.tick();
    if (quit || stop_signals >= 2) return ShutdownKind::kCold;
    if (stop_signals == 0) continue;
    if (!draining) {
      // Warm shutdown: no new deliveries (other workers get the queue at
      // once), prefetched jobs go back, running jobs finish and are acked.
      // The pidbox stays: `inspect ping` and revokes still work.
      draining = true;
      hooks.begin_drain();
      if (timeout_s) {
        deadline =
            Clock::now() + std::chrono::milliseconds(static_cast<long long>(*timeout_s * 1000.0));
      }
    }
    const int busy = hooks.busy();
    if (busy == 0) return ShutdownKind::kWarm;
    if (deadline && Clock::now() >= *deadline) {
      spdlog::warn("warm shutdown: WORKER_SHUTDOWN_TIMEOUT ({} s) has passed", *timeout_s);
      return ShutdownKind::kCold;
    }
    if (busy != last_busy) {
      spdlog::warn("{}", DrainWaitLine(hooks.running(), busy, timeout_s));
      last_busy = busy;
    }
  }
}

}  // namespace cw
