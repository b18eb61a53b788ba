// A flag a job checks between steps and while its programs run; set by a
// revoke, a shutdown or Ctrl-C (the job stops and reports nothing more), or
// by a time limit of the task itself (the job stops and reports Failed with
// the reason: `report` is true).
//
// Thread rules: every method from any thread; mu_ guards the reason.
#pragma once

#include <atomic>
#include <string>
#include <utility>

#include "common/thread_annotations.h"

namespace cw {

class CancelToken {
 public:
  void Cancel(std::string reason, bool report = false) {
    {
      MutexLock lock(mu_);
      if (cancelled_) return;
      reason_ = std::move(reason);
      report_ = report;
    }
    cancelled_ = true;
  }
  // True when the job must still report Failed with reason().
  bool report() const {
    MutexLock lock(mu_);
    return report_;
  }
  bool cancelled() const { return cancelled_; }
  std::string reason() const {
    MutexLock lock(mu_);
    return reason_;
  }

 private:
  std::atomic<bool> cancelled_{false};
  mutable Mutex mu_;
  std::string reason_ GUARDED_BY(mu_);
  bool report_ GUARDED_BY(mu_) = false;
};

}  // namespace cw
