// TestEnv: an Env for tests (common/env.h). It passes everything to a real
// Env, except what the test asks for:
//   - faults: the Nth write from now, or every write to a path matching a
//     pattern, fails with the errno given (ENOSPC: a full disk; EIO);
//   - a manual clock: after UseManualClock(), Now() moves only when the test
//     calls Advance(), and waits on the clock end when it passes their
//     deadline (or when their condition variable is notified).
//
// Thread rules: every method may be called from any thread at once (the
// job's threads write and wait while the test advances the clock). mu_
// guards the fault rules and the waiters' wake-up times, and is taken
// after a waiter's own mutex, never before; the clock is an atomic.
#pragma once

#include <fnmatch.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/env.h"

namespace cw::testing {

class TestEnv final : public Env {
 public:
  explicit TestEnv(Env& base = Env::Default()) : base_(base) {}

  // --- Faults ---
  // The `n`th call of WritableFile::Write from now (1: the next) fails with
  // `err`, and only that one.
  void FailNthWrite(int n, int err) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_write_ = writes_ + n;
    fail_nth_errno_ = err;
  }
  // Every write to a file whose full path matches `pattern` (fnmatch(3),
  // where `*` also matches `/`) fails with `err`.
  void FailWritesTo(std::string pattern, int err) {
    std::lock_guard<std::mutex> lock(mu_);
    path_rules_.push_back({std::move(pattern), err});
  }
  // How many writes were attempted, and how many failed on purpose.
  long long writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }
  int injected() const { return injected_; }

  // --- Clock ---
  // From now on the clock stands still until Advance (it starts where the
  // real one is).
  void UseManualClock() {
    now_ = base_.Now().time_since_epoch().count();
    manual_ = true;
  }
  void Advance(Clock::duration d) { now_ += d.count(); }
  // Blocks (really, up to `timeout`) until at least `n` threads wait on the
  // manual clock for a time still to come. After an Advance, a thread whose
  // wait ended counts again only once it waits anew: so awaiting every
  // waiter the test knows of means each has done what the advance woke it
  // for. False when `timeout` passed first.
  bool AwaitSleepers(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (SleepersNow() < n) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  // --- Env ---
  Clock::time_point Now() override {
    if (!manual_) return base_.Now();
    return Clock::time_point(Clock::duration(now_.load()));
  }

  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 Clock::time_point deadline) override {
    if (!manual_) return base_.WaitUntil(cv, lock, deadline);
    // No registry of waiters to notify (their mutexes are theirs): a waiter
    // returns after at most a millisecond of real time, and its caller looks
    // at its condition and the manual clock again (WaitUntilOr). Returning,
    // not waiting on here: a notification that comes as the slice times out
    // would otherwise be missed.
    Clock::rep until = deadline.time_since_epoch().count();
    {
      std::lock_guard<std::mutex> guard(mu_);
      waiting_until_.insert(until);
    }
    if (Now() < deadline) cv.wait_for(lock, std::chrono::milliseconds(1));
    std::lock_guard<std::mutex> guard(mu_);
    waiting_until_.erase(waiting_until_.find(until));
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::filesystem::path& path, const WritableFileOptions& options) override {
    auto file = base_.NewWritableFile(path, options);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(
        std::make_unique<File>(*this, path.string(),
                               options.name.empty() ? path.string() : options.name,
                               std::move(*file)));
  }
  Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return base_.RenameFile(from, to);
  }
  Status RemoveFile(const std::filesystem::path& path) override { return base_.RemoveFile(path); }

 private:
  struct PathRule {
    std::string pattern;
    int err;
  };

  class File final : public WritableFile {
   public:
    File(TestEnv& env, std::string path, std::string name, std::unique_ptr<WritableFile> real)
        : env_(env), path_(std::move(path)), name_(std::move(name)), real_(std::move(real)) {}
    Status Write(const char* data, std::size_t n) override {
      if (int err = env_.FaultFor(path_); err != 0) {
        return IoError("cannot write " + name_ + ": " + DescribeFileError(err));
      }
      return real_->Write(data, n);
    }
    Status Seek(std::uint64_t offset) override { return real_->Seek(offset); }
    std::uint64_t Tell() const override { return real_->Tell(); }
    Status SetMode(mode_t mode) override { return real_->SetMode(mode); }
    Status Close() override { return real_->Close(); }

   private:
    TestEnv& env_;
    std::string path_;  // what the fault rules match
    std::string name_;  // what messages say
    std::unique_ptr<WritableFile> real_;
  };

  int SleepersNow() {
    std::lock_guard<std::mutex> lock(mu_);
    const Clock::rep now = now_;
    return static_cast<int>(std::distance(waiting_until_.upper_bound(now), waiting_until_.end()));
  }

  // The errno this write of `path` fails with, or 0.
  int FaultFor(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    ++writes_;
    int err = 0;
    if (writes_ == fail_at_write_) err = fail_nth_errno_;
    for (const PathRule& rule : path_rules_) {
      if (err == 0 && ::fnmatch(rule.pattern.c_str(), path.c_str(), 0) == 0) err = rule.err;
    }
    if (err != 0) ++injected_;
    return err;
  }

  Env& base_;
  mutable std::mutex mu_;
  long long writes_ = 0;          // guarded by mu_
  long long fail_at_write_ = -1;  // guarded by mu_
  int fail_nth_errno_ = 0;        // guarded by mu_
  std::vector<PathRule> path_rules_;  // guarded by mu_
  // When each thread waiting on the manual clock wants to wake.
  std::multiset<Clock::rep> waiting_until_;  // guarded by mu_
  std::atomic<int> injected_{0};
  std::atomic<bool> manual_{false};
  std::atomic<Clock::rep> now_{0};
};

}  // namespace cw::testing
