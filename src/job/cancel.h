// A flag a job checks between steps and while its programs run; set by a
// revoke, a shutdown or Ctrl-C (the job stops and reports nothing more), or
// by a time limit of the task itself (the job stops and reports Failed with
// the reason: `report` is true).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <utility>

namespace cw {

class CancelToken {
 public:
  void Cancel(std::string reason, bool report = false) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return;
      reason_ = std::move(reason);
      report_ = report;
    }
    cancelled_ = true;
  }
  // True when the job must still report Failed with reason().
  bool report() const {
    std::lock_guard<std::mutex> lock(mu_);
    return report_;
  }
  bool cancelled() const { return cancelled_; }
  std::string reason() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::string reason_;
  bool report_ = false;
};

}  // namespace cw
