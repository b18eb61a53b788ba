// The loop that waits for a job's programs: until they all ended, or one of
// the reasons to stop them (a cancel, the time limit, the output limit).
//
// Time is the Env's (common/env.h): a test's manual clock passes the
// deadline without waiting for it.
//
// Thread rules: Wakeup::Notify from any thread (a program's, the disk
// watcher's); Supervise and WaitFor on the job's thread only. mu_ guards
// the count of notifications.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "common/env.h"
#include "job/cancel.h"
#include "job/program_run.h"

namespace cw {

// Wakes the loop: a program started or ended, or they must be stopped.
// Without it the loop would notice only at its next tick.
class Wakeup {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  // Waits up to `d` of `env`'s time, less when notified since the last wait.
  void WaitFor(Env& env, Env::Clock::duration d) {
    std::unique_lock<std::mutex> lock(mu_);
    WaitUntilOr(env, cv_, lock, env.Now() + d, [this] { return count_ != seen_; });
    seen_ = count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t count_ = 0;  // guarded by mu_
  std::uint64_t seen_ = 0;   // guarded by mu_
};

enum class ProgramsStop { kAllEnded, kCancelled, kTimedOut, kOutputTooLarge };

// Waits (ticking every 50 ms of `env`'s time, for the cancel and the
// deadline, which is on `env`'s clock) until every run is done, or
// `cancel`, the `deadline` or `too_large` says to stop them (the caller
// kills the containers then). `all_running` is called once, when
// every run has started (or ended): the programs' time counts from there.
ProgramsStop Supervise(const std::vector<ProgramRun*>& runs,
                       std::chrono::steady_clock::time_point deadline, const CancelToken& cancel,
                       const std::atomic<bool>& too_large, Wakeup& wakeup,
                       const std::function<void()>& all_running, Env& env = Env::Default());

}  // namespace cw
