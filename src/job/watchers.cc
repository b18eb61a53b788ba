#include "job/watchers.h"

#include <sys/stat.h>

#include <algorithm>
#include <exception>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "common/log.h"
#include "common/safe_file.h"
#include "common/units.h"
#include "job/job_filesystem.h"
#include "storage/file_util.h"

namespace cw {
namespace fs = std::filesystem;
using Clock = Env::Clock;

std::optional<fs::path> FindDetailedResultsFile(const fs::path& output_dir) {
  // symlink_status: a link the program left is never taken for the file.
  std::error_code ec;
  fs::path preferred = output_dir / "detailed_results.html";
  if (fs::is_regular_file(fs::symlink_status(preferred, ec))) return preferred;
  std::optional<fs::path> first;
  for (const auto& entry : fs::directory_iterator(output_dir, ec)) {
    if (fs::is_regular_file(entry.symlink_status(ec)) && entry.path().extension() == ".html" &&
        (!first || entry.path() < *first)) {
      first = entry.path();
    }
  }
  return first;
}

namespace {

// One look of the detailed results watcher; its state between looks.
class DetailedResultsLooker {
 public:
  DetailedResultsLooker(const DetailedResultsWatch& w, Env& env)
      : w_(w), env_(env), last_search_(env.Now() - std::chrono::hours(1)) {}

  void Look(bool final) {
    // detailed_results.html is looked for every time; without it, finding
    // "the first *.html" lists the output folder, which may be big: not more
    // than every 2 s.
    const fs::path preferred = w_.output_dir / "detailed_results.html";
    std::error_code ec;
    if (fs::is_regular_file(fs::symlink_status(preferred, ec))) {
      file_ = preferred;
    } else if (!file_ || !fs::is_regular_file(fs::symlink_status(*file_, ec))) {
      if (!final && env_.Now() - last_search_ < std::chrono::seconds(2)) return;
      last_search_ = env_.Now();
      file_ = FindDetailedResultsFile(w_.output_dir);
      if (!file_) return;
    }
    struct stat st;
    if (::lstat(file_->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    Seen seen{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
              static_cast<std::int64_t>(st.st_size)};
    if (last_ && *last_ == seen) return;
    if (!final && last_upload_ && env_.Now() - *last_upload_ < w_.min_gap) {
      return;  // changed again too soon: a later look sends it
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxDetailedResultsBytes) {
      Note(file_->filename().string() + " is " + FormatGb(static_cast<std::uint64_t>(st.st_size)) +
           " GB, more than the " + std::to_string(kMaxDetailedResultsBytes >> 20) +
           " MiB allowed");
      last_ = seen;
      return;
    }
    Send(seen);
  }

 private:
  using Seen = std::pair<std::int64_t, std::int64_t>;  // mtime ns, size

  void Note(const std::string& why) {
    if (!noted_) w_.reporter.LiveError("Detailed results not sent: " + why);
    noted_ = true;
  }

  void Send(const Seen& seen) {
    auto fd = OpenRegularFile(*file_);
    if (!fd.ok()) {
      Note(fd.status().message());
      return;
    }
    Status copied = CopyFdToFile(fd->get(), *file_, w_.snapshot, kMaxDetailedResultsBytes);
    if (!copied.ok()) {
      spdlog::warn("{}: cannot snapshot the detailed results: {}", w_.submission,
                   copied.ToString());
      return;
    }
    last_ = seen;
    last_upload_ = env_.Now();
    Status put = w_.storage.Put(w_.url, w_.snapshot, "text/html");
    if (put.ok()) {
      w_.reporter.DetailedResultsUpdated();
    } else {
      spdlog::warn("{}: detailed results upload failed: {}", w_.submission, put.ToString());
    }
  }

  const DetailedResultsWatch& w_;
  Env& env_;
  std::optional<Seen> last_;
  std::optional<Clock::time_point> last_upload_;
  std::optional<fs::path> file_;
  Clock::time_point last_search_;
  bool noted_ = false;
};

}  // namespace

void WatchDetailedResults(const DetailedResultsWatch& w, const StopSignal& stop) {
  // The program may still be writing, or swap in a link or a FIFO between two
  // looks: the file is opened without following links and copied to a
  // snapshot outside the output folder, and the snapshot is what is sent.
  // Looks are cheap (an lstat), so they are frequent and a change reaches
  // the site within about a second; uploads are at most one a second, and
  // never of an unchanged file.
  DetailedResultsLooker looker(w, stop.env());
  while (!stop.stopped()) {
    looker.Look(false);
    stop.SleepFor(w.interval);
  }
  looker.Look(true);  // always the final version
}

namespace {

// What the programs' folders hold: the job's own filesystem's used bytes
// (which count what no walk sees: files deleted while open, folders the
// worker cannot read, paths too deep), else a walk, with the folders it
// could not list sized by the worker's own image on slow looks.
class FolderMeasure {
 public:
  explicit FolderMeasure(const DiskWatch& w) : w_(w) {}

  std::uintmax_t Bytes(bool slow_look) {
    if (!w_.filesystem.empty()) {
      auto used = UsedBytes(w_.filesystem);
      if (used.ok()) return static_cast<std::uintmax_t>(*used);
    }
    std::uintmax_t bytes = 0;
    for (const auto& d : w_.dirs) {
      TreeUsage usage = MeasureTree(d);
      std::uintmax_t& sized = sandboxed_[d];
      if (usage.unreadable > 0 && w_.size_unreadable && slow_look) {
        auto all = w_.size_unreadable(d);
        if (all.ok()) sized = *all;
      }
      bytes += std::max<std::uintmax_t>(usage.bytes, usage.unreadable > 0 ? sized : 0);
    }
    return bytes;
  }

 private:
  const DiskWatch& w_;
  std::map<std::filesystem::path, std::uintmax_t> sandboxed_;  // the last size of each
};

}  // namespace

void WatchDisk(const DiskWatch& w, const StopSignal& stop,
               const std::function<void(std::uintmax_t)>& seen,
               const std::function<void()>& too_large) {
  FolderMeasure folders(w);
  Env& env = stop.env();
  auto last_layer_check = env.Now() - std::chrono::hours(1);
  std::uintmax_t layers = 0;
  while (!stop.stopped()) {
    auto t0 = env.Now();
    // A program may also write inside its container (/tmp, its home): that
    // lands in the engine's storage. The engine walks the container's layer
    // to size it, so this is asked less often (and so is the worker's own
    // image about folders the walk cannot list).
    const bool slow_look = env.Now() - last_layer_check >= 5 * w.interval;
    std::uintmax_t written = folders.Bytes(slow_look);
    written = written > w.baseline ? written - w.baseline : 0;
    if (slow_look) {
      last_layer_check = env.Now();
      layers = 0;
      for (const auto& id : w.containers()) {
        auto state = w.engine.Inspect(id, true);
        if (state.ok() && state->writable_bytes > 0) {
          layers += static_cast<std::uintmax_t>(state->writable_bytes);
        }
      }
    }
    seen(written + layers);
    if (written + layers > w.limit) {
      spdlog::warn("{}: the programs wrote {} bytes ({} in their containers), more than "
                   "MAX_OUTPUT_SIZE_GB; stopping them",
                   w.submission, written + layers, layers);
      too_large();
      return;
    }
    // A huge tree makes each walk slow: walk at most a fifth of the time.
    auto walk = env.Now() - t0;
    stop.SleepFor(std::max<Clock::duration>(w.interval, 4 * walk));
  }
}

void ProgramUsage::Raise(long long memory, double cpu) {
  auto raise = [](auto& atomic, auto value) {
    auto seen = atomic.load();
    while (value > seen && !atomic.compare_exchange_weak(seen, value)) {
    }
  };
  raise(peak_memory, memory);
  raise(cpu_seconds, cpu);
}

void ProgramUsage::Into(ProgramOutcome& o) const {
  if (peak_memory >= 0) o.peak_memory_bytes = peak_memory.load();
  if (cpu_seconds >= 0) o.cpu_seconds = cpu_seconds.load();
}

void WatchUsage(ContainerEngine& engine, const std::vector<UsageTarget>& targets,
                std::chrono::milliseconds interval, const StopSignal& stop) {
  while (!stop.stopped()) {
    // Until every running program has a first sample, look again soon: a
    // short program would otherwise end unmeasured.
    bool unsampled = false;
    for (const UsageTarget& t : targets) {
      if (*t.done) continue;
      if (!*t.running) {
        unsampled = true;
        continue;
      }
      auto stats = engine.Stats(t.container_id);
      if (!stats.ok()) continue;  // it may just have ended
      t.usage->Raise(std::max(stats->memory_bytes, stats->memory_peak_bytes), stats->cpu_seconds);
      unsampled = unsampled || t.usage->peak_memory < 0;
    }
    stop.SleepFor(unsampled ? std::min(interval, std::chrono::milliseconds(50)) : interval);
  }
}

void WatcherThreads::Start(const char* what, long long submission, std::function<void()> fn) {
  const LogFields fields = CurrentLogFields();  // the job's, for the thread's lines
  threads_.emplace_back([what, submission, fn = std::move(fn), fields] {
    ScopedLogFields scoped(fields);
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("{}: the {} stopped: {}", submission, what, e.what());
    } catch (...) {
      spdlog::error("{}: the {} stopped: an unknown exception", submission, what);
    }
  });
}

void WatcherThreads::StopAndJoin() {
  stop_.Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace cw
