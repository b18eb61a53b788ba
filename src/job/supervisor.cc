#include "job/supervisor.h"

namespace cw {
using Clock = std::chrono::steady_clock;

ProgramsStop Supervise(const std::vector<ProgramRun*>& runs, Clock::time_point deadline,
                       const CancelToken& cancel, const std::atomic<bool>& too_large,
                       Wakeup& wakeup, const std::function<void()>& all_running, Env& env) {
  bool started_all = false;
  while (true) {
    bool all_done = true;
    bool all_started = true;
    for (const ProgramRun* run : runs) {
      all_done = all_done && run->done();
      all_started = all_started && (run->running() || run->done());
    }
    if (all_started && !started_all) {
      started_all = true;
      all_running();
    }
    if (all_done) return ProgramsStop::kAllEnded;
    if (cancel.cancelled()) return ProgramsStop::kCancelled;
    if (too_large) return ProgramsStop::kOutputTooLarge;
    if (env.Now() >= deadline) return ProgramsStop::kTimedOut;
    // The tick is for a cancel and the deadline; the programs wake it.
    wakeup.WaitFor(env, std::chrono::milliseconds(50));
  }
}

}  // namespace cw
