// What watches a job's programs while they run, each on a thread of its
// own, each given only what it needs and a StopSignal:
//   - WatchDetailedResults: sends the scoring output's detailed results page
//     to the site as it changes (at most one upload a second, always the
//     final version);
//   - WatchDisk: measures what the programs wrote (their filesystem, or a
//     walk of their folders, and their containers' layers) against
//     MAX_OUTPUT_SIZE_GB;
//   - WatchUsage: samples each running program's memory and CPU.
// WatcherThreads owns the threads: it starts each guarded (an exception is
// logged, never let out of the thread) and stops and joins them all, in its
// destructor if not before.
//
// Thread rules: StopSignal::Stop and stopped() from any thread; a watcher
// function runs on its own thread and touches only its arguments (the
// engine, storage and reporter are thread-safe; ProgramUsage is atomics).
// WatcherThreads' methods are for its owner's thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/env.h"
#include "engine/engine.h"
#include "job/program_files.h"
#include "report/reporter.h"
#include "storage/storage.h"

namespace cw {

// A stop flag the watchers sleep on: Stop() wakes them at once. Its Env's
// clock is the watchers' (a test's manual clock moves their intervals).
class StopSignal {
 public:
  explicit StopSignal(Env& env = Env::Default()) : env_(env) {}
  Env& env() const { return env_; }
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }
  // Sleeps `d` of the Env's time, or until Stop(). Whether it is still not
  // stopped.
  bool SleepFor(Env::Clock::duration d) const {
    std::unique_lock<std::mutex> lock(mu_);
    WaitUntilOr(env_, cv_, lock, env_.Now() + d, [this] { return stopped_; });
    return !stopped_;
  }

 private:
  Env& env_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopped_ = false;  // guarded by mu_
};

// Detailed results past this are not sent (an HTML page, images inlined).
inline constexpr std::uint64_t kMaxDetailedResultsBytes = 256ull << 20;

// `output_dir`/detailed_results.html, else its first *.html by name; never a
// link or anything but a regular file.
std::optional<std::filesystem::path> FindDetailedResultsFile(const std::filesystem::path& output_dir);

struct DetailedResultsWatch {
  std::filesystem::path output_dir;  // where the scoring program writes
  std::filesystem::path snapshot;    // a file outside it: what is sent
  std::string url;                   // rewritten already
  Storage& storage;
  Reporter& reporter;                // DetailedResultsUpdated, and a note when not sent
  std::chrono::milliseconds interval;
  std::chrono::milliseconds min_gap;
  long long submission = 0;          // for log lines
};
// Until `stop`, then one final look.
void WatchDetailedResults(const DetailedResultsWatch& w, const StopSignal& stop);

struct DiskWatch {
  std::vector<std::filesystem::path> dirs;  // every folder a program can write
  std::uintmax_t baseline = 0;  // what was in them before the programs started
  std::uintmax_t limit = 0;     // MAX_OUTPUT_SIZE_GB
  std::chrono::milliseconds interval{1000};
  ContainerEngine& engine;      // the containers' layers, every 5 intervals
  std::function<std::vector<std::string>()> containers;  // the job's, now
  long long submission = 0;
  // Set: the job's own filesystem holding `dirs`, whose used bytes (statvfs)
  // are measured instead of walking them (job/job_filesystem.h).
  std::filesystem::path filesystem;
  // Set: sizes a folder the walk could not list all of (the worker's own
  // image, job/folder_sandbox.h), at the layers' pace.
  std::function<Result<std::uint64_t>(const std::filesystem::path&)> size_unreadable;
};
// Until `stop`, or until the programs wrote more than the limit: then
// `too_large` is called (with what they wrote) and it returns. `seen` is
// called after each measure.
void WatchDisk(const DiskWatch& w, const StopSignal& stop,
               const std::function<void(std::uintmax_t)>& seen,
               const std::function<void()>& too_large);

// The highest figures sampled of one program (-1: none yet).
struct ProgramUsage {
  std::atomic<long long> peak_memory{-1};
  std::atomic<double> cpu_seconds{-1};
  void Raise(long long memory, double cpu);
  // Into the outcome, when sampled.
  void Into(ProgramOutcome& o) const;
};

// One program, as the usage sampler sees it.
struct UsageTarget {
  std::string container_id;
  const std::atomic<bool>* running;
  const std::atomic<bool>* done;
  ProgramUsage* usage;
};
// Until `stop`; until every running program has a first sample, it looks
// again within 50 ms, so a short program does not end unmeasured.
void WatchUsage(ContainerEngine& engine, const std::vector<UsageTarget>& targets,
                std::chrono::milliseconds interval, const StopSignal& stop);

class WatcherThreads {
 public:
  explicit WatcherThreads(Env& env = Env::Default()) : stop_(env) {}
  ~WatcherThreads() { StopAndJoin(); }
  WatcherThreads(const WatcherThreads&) = delete;
  WatcherThreads& operator=(const WatcherThreads&) = delete;

  const StopSignal& stop() const { return stop_; }
  // Runs `fn` on a thread of its own, with the caller's log fields; an
  // exception is logged as "<submission>: the <what> stopped: ...".
  void Start(const char* what, long long submission, std::function<void()> fn);
  // Stops every watcher and waits for each to end (after its final look).
  void StopAndJoin();

 private:
  StopSignal stop_;
  std::vector<std::thread> threads_;
};

}  // namespace cw
