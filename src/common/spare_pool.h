// A few things of one kind made ahead, in the background, each taken once:
// a slot's next network holders (job/network_holders.h) and its next job
// folder (job/spare_job_folders.h). The pool keeps `count` ready; Take hands
// one over (the taker now owns it) and Prepare makes more on the pool's own
// thread. What no one took is discarded when the pool goes.
//
// Thread rules: Prepare, Take and ready may be called from any thread; `make`
// runs on the pool's executor thread only, `discard` there or in the
// destructor. mu_ guards ready_ and failing_; neither function is called
// under it.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/serial_executor.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace cw {

template <typename T>
class SparePool {
 public:
  using MakeFn = std::function<Result<T>()>;
  using DiscardFn = std::function<void(const T&)>;

  // `what` names one in the log ("a network holder"): a failing `make` is
  // logged once until one is made again.
  SparePool(std::string what, int count, MakeFn make, DiscardFn discard)
      : what_(std::move(what)),
        count_(count),
        make_(std::move(make)),
        discard_(std::move(discard)),
        executor_("spare " + what_) {}

  // Stops making spares and discards those no one took.
  ~SparePool() {
    executor_.Shutdown(SerialExecutor::Leftovers::kDrop);
    std::deque<T> left;
    {
      MutexLock lock(mu_);
      left.swap(ready_);
    }
    for (const T& spare : left) discard_(spare);
  }
  SparePool(const SparePool&) = delete;
  SparePool& operator=(const SparePool&) = delete;

  // Makes spares in the background until `count` are ready.
  void Prepare() {
    (void)executor_.Post([this] { Refill(); });  // refused only while shutting down
  }

  // A ready spare, now the caller's; none when none is ready. Does not
  // make the next (Prepare does).
  std::optional<T> Take() {
    MutexLock lock(mu_);
    if (ready_.empty()) return std::nullopt;
    T spare = std::move(ready_.front());
    ready_.pop_front();
    return spare;
  }

  std::size_t ready() const {
    MutexLock lock(mu_);
    return ready_.size();
  }

 private:
  void Refill() {
    for (;;) {
      {
        MutexLock lock(mu_);
        if (static_cast<int>(ready_.size()) >= count_) return;
      }
      Result<T> made = make_();
      MutexLock lock(mu_);
      if (!made.ok()) {
        // Takers make their own meanwhile; the next Prepare tries again.
        if (!failing_) spdlog::warn("cannot make {} ahead: {}", what_, made.status().message());
        failing_ = true;
        return;
      }
      failing_ = false;
      ready_.push_back(std::move(*made));
    }
  }

  const std::string what_;
  const int count_;
  const MakeFn make_;
  const DiscardFn discard_;
  mutable Mutex mu_;
  std::deque<T> ready_ GUARDED_BY(mu_);
  bool failing_ GUARDED_BY(mu_) = false;
  SerialExecutor executor_;  // last: stops before the members above go
};

}  // namespace cw
