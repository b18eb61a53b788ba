// A flag a job checks between steps and while its programs run; set by a
// revoke, a shutdown or Ctrl-C.
#pragma once

#include <atomic>
#include <string>
#include <mutex>

namespace cw {

class CancelToken {
 public:
  void Cancel(std::string reason) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return;
      reason_ = std::move(reason);
    }
    cancelled_ = true;
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
};

}  // namespace cw
