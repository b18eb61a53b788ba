#include "common/thread_annotations.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace cw {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A flag set on another thread, waited for as the project's classes do.
class Flag {
 public:
  void Set() {
    MutexLock lock(mu_);
    set_ = true;
    cv_.NotifyAll();
  }
  // Whether it was set before `limit` passed.
  bool WaitFor(milliseconds limit) {
    MutexLock lock(mu_);
    const auto until = steady_clock::now() + limit;
    while (!set_ && cv_.WaitUntil(lock, until)) {
    }
    return set_;
  }
  bool TrySet() {
    if (!mu_.TryLock()) return false;
    set_ = true;
    mu_.Unlock();
    return true;
  }
  bool is_set() {
    MutexLock lock(mu_);
    return set_;
  }
  Mutex& mu() { return mu_; }

 private:
  Mutex mu_;
  CondVar cv_;
  bool set_ GUARDED_BY(mu_) = false;
};

TEST(CondVarTest, WaitEndsWhenNotified) {
  Flag flag;
  std::thread setter([&] {
    std::this_thread::sleep_for(milliseconds(20));
    flag.Set();
  });
  EXPECT_TRUE(flag.WaitFor(milliseconds(5000)));
  setter.join();
}

TEST(CondVarTest, WaitEndsAtTheDeadline) {
  Flag flag;
  const auto start = steady_clock::now();
  EXPECT_FALSE(flag.WaitFor(milliseconds(50)));
  EXPECT_GE(steady_clock::now() - start, milliseconds(50));
}

TEST(MutexTest, TryLockFailsWhileAnotherThreadHoldsIt) {
  Flag flag;
  {
    MutexLock held(flag.mu());
    bool got = true;
    // try_lock from the owning thread is undefined; ask from another.
    std::thread other([&] { got = flag.TrySet(); });
    other.join();
    EXPECT_FALSE(got);
  }
  EXPECT_FALSE(flag.is_set());
  EXPECT_TRUE(flag.TrySet());
  EXPECT_TRUE(flag.is_set());
}

TEST(MutexLockTest, UnlockLetsAnotherThreadIn) {
  Flag flag;
  MutexLock lock(flag.mu());
  lock.Unlock();
  std::thread other([&] { flag.Set(); });
  other.join();
  lock.Lock();
  lock.Unlock();  // is_set takes the lock itself
  EXPECT_TRUE(flag.is_set());
}

}  // namespace
}  // namespace cw
