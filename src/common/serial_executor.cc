#include "common/serial_executor.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <utility>

namespace cw {

struct SerialExecutor::Tick {
  SerialExecutor* executor;
  std::chrono::milliseconds interval;
  std::shared_ptr<Task> task;
  void operator()() const {
    (*task)();
    (void)executor->PostAt(Clock::now() + interval, *this, /*bounded=*/false);
  }
};

SerialExecutor::SerialExecutor(std::string name, std::size_t max_queued)
    : name_(std::move(name)), max_queued_(max_queued), thread_([this] { Loop(); }) {}

SerialExecutor::~SerialExecutor() {
  Shutdown(Leftovers::kRun);
  if (thread_.joinable()) thread_.join();  // when Shutdown was a task's
}

bool SerialExecutor::Post(Task task) { return PostAt(Clock::now(), std::move(task), true); }

bool SerialExecutor::PostAfter(std::chrono::milliseconds delay, Task task) {
  return PostAt(Clock::now() + delay, std::move(task), true);
}

bool SerialExecutor::Repeat(std::chrono::milliseconds interval, Task task) {
  return PostAt(Clock::now() + interval,
                Tick{this, interval, std::make_shared<Task>(std::move(task))}, false);
}

bool SerialExecutor::PostAt(Clock::time_point due, Task task, bool bounded) {
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    if (bounded && max_queued_ > 0 && queue_.size() >= max_queued_) return false;
    queue_.emplace(due, std::move(task));
  }
  cv_.NotifyOne();
  return true;
}

std::size_t SerialExecutor::pending() const {
  MutexLock lock(mu_);
  return queue_.size() + (running_task_ ? 1 : 0);
}

std::size_t SerialExecutor::Shutdown(Leftovers leftovers) {
  std::size_t dropped = 0;
  {
    MutexLock lock(mu_);
    if (stopping_) return 0;
    stopping_ = true;
    if (leftovers == Leftovers::kDrop) {
      dropped = queue_.size();
      queue_.clear();
    } else {
      // What is due runs; a timer not yet due never will.
      auto undue = queue_.upper_bound(Clock::now());
      dropped = static_cast<std::size_t>(std::distance(undue, queue_.end()));
      queue_.erase(undue, queue_.end());
    }
  }
  cv_.NotifyAll();
  // From one of its own tasks, it cannot wait for itself: the thread ends
  // after this task, and the destructor joins it.
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
  return dropped;
}

void SerialExecutor::Loop() {
  MutexLock lock(mu_);
  while (true) {
    if (queue_.empty()) {
      if (stopping_) return;
      cv_.Wait(lock);
      continue;
    }
    auto first = queue_.begin();
    if (const Clock::time_point due = first->first; due > Clock::now()) {
      cv_.WaitUntil(lock, due);  // or an earlier task, or Shutdown
      continue;
    }
    Task task = std::move(first->second);
    queue_.erase(first);
    running_task_ = true;
    lock.Unlock();
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("{}: a task stopped: {}", name_, e.what());
    } catch (...) {
      spdlog::error("{}: a task stopped on an unknown exception", name_);
    }
    task = nullptr;  // what it holds goes before it counts as done
    lock.Lock();
    running_task_ = false;
  }
}

}  // namespace cw
