// One thread that runs posted tasks one after another, in the order they are
// due: the worker's "do this off my thread" loops (bad-job reports to the
// site, a finished job's cleanup, closing a job's live sockets, the engine
// check every 10 s) are each one of these, so each only says what it runs.
//
// Threads: Post, PostAfter, Repeat, pending and Shutdown may be called from
// any thread, tasks included (Shutdown from a task does not wait for the
// thread, which ends after that task). The destructor calls Shutdown(kRun)
// and joins; it must not run on the executor's own thread.
// mu_ guards the queue and the two flags; thread_ is set once, in the
// constructor.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "common/thread_annotations.h"

namespace cw {

class SerialExecutor {
 public:
  using Task = std::function<void()>;
  using Clock = std::chrono::steady_clock;

  // `max_queued`: tasks waiting (not the one running) past which Post refuses
  // more; 0 = no bound. `name` is for the log line of a task that throws.
  explicit SerialExecutor(std::string name, std::size_t max_queued = 0);
  ~SerialExecutor();
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  // Queues `task` to run after those already due. False (and `task` is not
  // taken) when the queue is full or Shutdown has begun: the caller decides
  // what then (run it itself, drop it, log it).
  [[nodiscard]] bool Post(Task task);
  // As Post, to run once `delay` has passed (tasks due at the same time run
  // in the order posted).
  [[nodiscard]] bool PostAfter(std::chrono::milliseconds delay, Task task);
  // Runs `task` every `interval` (the first time after one interval) until
  // Shutdown. False when Shutdown has begun.
  bool Repeat(std::chrono::milliseconds interval, Task task);

  // Tasks queued (due or not) plus the one running.
  std::size_t pending() const;

  enum class Leftovers {
    kRun,   // tasks already due run first (a delayed or repeating one is dropped)
    kDrop,  // queued tasks are dropped; the running one finishes
  };
  // Stops taking tasks and joins the thread (but from one of its tasks).
  // Returns the number of queued tasks dropped. Later calls do nothing and
  // return 0.
  std::size_t Shutdown(Leftovers leftovers);

 private:
  struct Tick;  // a Repeat's task, which posts itself again
  void Loop() EXCLUDES(mu_);
  bool PostAt(Clock::time_point due, Task task, bool bounded) EXCLUDES(mu_);

  const std::string name_;
  const std::size_t max_queued_;
  mutable Mutex mu_;
  CondVar cv_;  // a task queued, or Shutdown
  std::multimap<Clock::time_point, Task> queue_ GUARDED_BY(mu_);  // by due time, FIFO among equals
  bool running_task_ GUARDED_BY(mu_) = false;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace cw
