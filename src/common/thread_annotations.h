// Which lock guards what, said so that a compiler checks it.
//
// The macros name Clang's thread-safety attributes; under another compiler
// they expand to nothing, so the GCC build is unchanged. scripts/thread-check
// compiles every source under Clang with -Wthread-safety -Werror and is run
// by scripts/test, so a member read without its lock fails the tests.
//
// Mutex and MutexLock are std::mutex and std::unique_lock<std::mutex> with
// the attributes on (the standard library's types carry none under
// libstdc++). CondVar is a std::condition_variable that waits on a
// MutexLock. It is not std::condition_variable_any: that one keeps a mutex
// of its own and locks it on every wait and notify, where CondVar hands the
// std::mutex inside straight to std::condition_variable.
//
// A condition is waited for with a loop in the caller's own body,
//   while (!ready_) cv_.Wait(lock);
// not with a predicate lambda: the analysis checks a lambda as a function of
// its own that holds no lock, so a guarded member read in one would be
// flagged.
//
// Conventions in the project: members follow the lock that guards them,
// each marked GUARDED_BY (PT_GUARDED_BY for what a pointer points to); a
// private helper called with the lock held says REQUIRES(mu_); a method that
// takes the lock itself and must not be called with it says EXCLUDES(mu_).
// A lock is never held across a call into the container engine, the site,
// storage or other blocking I/O; where one must be, the member's comment
// says why, and why it cannot deadlock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define CW_THREAD_ATTRIBUTE(x) __attribute__((x))
#else
#define CW_THREAD_ATTRIBUTE(x)
#endif

// On a class: it is a lock (Mutex) or holds one for its lifetime (MutexLock).
#define CAPABILITY(name) CW_THREAD_ATTRIBUTE(capability(name))
#define SCOPED_CAPABILITY CW_THREAD_ATTRIBUTE(scoped_lockable)

// On a member: read or written only with the lock held.
#define GUARDED_BY(x) CW_THREAD_ATTRIBUTE(guarded_by(x))
// On a pointer member: what it points to is read or written only with the lock.
#define PT_GUARDED_BY(x) CW_THREAD_ATTRIBUTE(pt_guarded_by(x))
// On a lock member: the order in which two locks may be taken.
#define ACQUIRED_BEFORE(...) CW_THREAD_ATTRIBUTE(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) CW_THREAD_ATTRIBUTE(acquired_after(__VA_ARGS__))

// On a function: the caller holds the lock (exclusively, or at least shared).
#define REQUIRES(...) CW_THREAD_ATTRIBUTE(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CW_THREAD_ATTRIBUTE(requires_shared_capability(__VA_ARGS__))
// On a function: the caller does not hold the lock (the function takes it).
#define EXCLUDES(...) CW_THREAD_ATTRIBUTE(locks_excluded(__VA_ARGS__))

// On a function: it takes, or lets go of, the lock and returns so.
#define ACQUIRE(...) CW_THREAD_ATTRIBUTE(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CW_THREAD_ATTRIBUTE(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CW_THREAD_ATTRIBUTE(try_acquire_capability(__VA_ARGS__))
// On a function: it checks at run time that the lock is held.
#define ASSERT_CAPABILITY(x) CW_THREAD_ATTRIBUTE(assert_capability(x))
// On a function: it returns the lock named.
#define RETURN_CAPABILITY(x) CW_THREAD_ATTRIBUTE(lock_returned(x))

// On a function the analysis cannot follow (say why beside it).
#define NO_THREAD_SAFETY_ANALYSIS CW_THREAD_ATTRIBUTE(no_thread_safety_analysis)

namespace cw {

class CondVar;

// std::mutex, as a capability the analysis tracks. Not recursive.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction, unless let go of earlier
// with Unlock() (and taken again with Lock()).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Lock() ACQUIRE() { lock_.lock(); }
  void Unlock() RELEASE() { lock_.unlock(); }

 private:
  friend class CondVar;
  std::unique_lock<std::mutex> lock_;
};

// A condition variable over a MutexLock. A wait lets go of the lock while it
// sleeps and holds it again when it returns, so to the analysis the lock is
// held throughout. Wakes may be spurious: wait in a loop on the condition.
class CondVar {
 public:
  void Wait(MutexLock& lock) { cv_.wait(lock.lock_); }
  // False when `deadline` passed (the caller still re-checks its condition).
  template <class Clock, class Duration>
  bool WaitUntil(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv_.wait_until(lock.lock_, deadline) == std::cv_status::no_timeout;
  }
  template <class Rep, class Period>
  bool WaitFor(MutexLock& lock, const std::chrono::duration<Rep, Period>& d) {
    return cv_.wait_for(lock.lock_, d) == std::cv_status::no_timeout;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace cw
