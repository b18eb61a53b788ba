// Progress of the transfers a job waits on before its programs run (image
// pulls, bundle downloads), for the person watching the worker: on a terminal
// a bar redrawn in place on one line, in a log a line every few seconds and
// one at the end. Only the operator sees it; nothing goes to the site.
//
// Thread-safety: a TransferProgress may be updated from any thread (libcurl's
// callback, the engine's pull stream); an update that finds another one
// rendering skips its drawing instead of waiting, so a transfer never waits
// on the terminal or the log for more than one short write of its own.
// BarLine's methods may be called from any thread; its lock is held while
// it writes to stderr (the point of it: one line, one writer), and a
// TransferProgress's lock while it renders.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/sinks/sink.h>

#include "common/thread_annotations.h"
#include "engine/engine.h"

namespace cw {

using SteadyTime = std::chrono::steady_clock::time_point;

// Bytes against time for one transfer: the rate over a sliding window (so a
// stall shows within seconds, not averaged away over a long pull) and the time
// left at that rate.
class TransferMeter {
 public:
  TransferMeter(SteadyTime start, std::chrono::milliseconds window);

  // `done` so far at `now`. A count that goes back (a retry starting the
  // download again) restarts the window: the old rate says nothing of the
  // new attempt.
  void Record(SteadyTime now, std::uint64_t done);

  std::uint64_t done() const { return last_.second; }
  // Bytes per second over the window; 0 until samples span a tenth of a second.
  double BytesPerSecond() const;
  // Time left to reach `total` at the current rate; none without a rate or
  // when `total` is not above what is done.
  std::optional<std::chrono::seconds> Eta(std::uint64_t total) const;

 private:
  std::chrono::milliseconds window_;
  std::deque<std::pair<SteadyTime, std::uint64_t>> samples_;  // oldest first
  std::pair<SteadyTime, std::uint64_t> last_;
};

// "532 B", "1.5 kB", "45.0 MB", "3.40 GB": decimal units, as the *_GB settings.
std::string FormatBytes(std::uint64_t bytes);
// "0.4s", "8s", "12s", "3m05s", "1h02m": tenths only below 10 s, and only
// when not whole (an ETA is counted in whole seconds).
std::string FormatDuration(std::chrono::milliseconds d);

// What one rendering shows of a transfer.
struct ProgressSnapshot {
  std::string label;  // "pulling image busybox", "downloading the input data"
  std::uint64_t done = 0;
  std::uint64_t total = 0;     // 0: not known (a download without Content-Length)
  bool total_partial = false;  // `total` is a lower bound (layers not sized yet)
  double bytes_per_second = 0;
  std::optional<std::chrono::seconds> eta;
  std::chrono::milliseconds elapsed{0};
  std::string detail;  // "2/5 layers"
};

// The log form: "pulling image x: 1.20 GB of 3.40 GB (35%), 45.0 MB/s, 49s left, 2/5 layers".
std::string ProgressLogLine(const ProgressSnapshot& s);
// The end of a transfer in a log: "pulling image x: done, 3.40 GB in 1m12s (47.2 MB/s)";
// when it failed: "pulling image x: stopped after 1.20 GB in 25s".
std::string ProgressFinalLine(const ProgressSnapshot& s, bool ok);
// The terminal form, exactly `columns` - 1 characters wide (the last column
// is left empty, so no terminal wraps the line), led by "\r":
// "\rpulling image x [#####.....]  35%  1.20/3.40 GB  45.0 MB/s  ETA 49s".
// The label is cut first when the terminal is narrow.
std::string ProgressBarLine(const ProgressSnapshot& s, int columns);

enum class ProgressStyle {
  kBar,    // one line of a terminal, redrawn with \r, cleared at the end
  kLines,  // log lines: one every `line_every`, and one at the end
};

// Where and how transfers are shown. Without `write` nothing is.
struct ProgressDisplay {
  ProgressStyle style = ProgressStyle::kLines;
  // kBar: raw text for the terminal; kLines: one log line (no newline).
  // Called from every transfer's thread, several at once (a pull beside the
  // downloads): it must be safe for that (spdlog is).
  std::function<void(const std::string&)> write;
  // The terminal's width for kBar, asked at each redraw (it may be resized);
  // null or not positive: 80.
  std::function<int()> columns;
  // Seam for tests; null: the steady clock.
  std::function<SteadyTime()> now;
  // A transfer shorter than this shows nothing at all, so small bundles make
  // no noise.
  std::chrono::milliseconds start_after{2000};
  std::chrono::milliseconds line_every{5000};
  std::chrono::milliseconds redraw_every{200};
  std::chrono::milliseconds rate_window{10000};

  bool enabled() const { return static_cast<bool>(write); }
};

// The width of the terminal on `fd`; 0 when it is not a terminal.
int TerminalColumns(int fd);

// The line of stderr that bars are drawn on, shared by every transfer (a pull
// and a download run at once) and by the log: other output first clears a
// bar (the transfer draws it again at its next update), so a log line never
// lands in the middle of one.
class BarLine {
 public:
  // Writes `text` (a bar led by "\r", or the blanks that clear one).
  static void Draw(const std::string& text);
  // Clears the bar, if one is drawn, and runs `write` (any other stderr
  // output) under the bar's lock, so a bar another thread draws cannot land
  // in front of it.
  static void WriteClear(const std::function<void()>& write);
};

// A log sink that clears the bar line before each message, then hands the
// message to `inner` (the terminal's own sink).
std::shared_ptr<spdlog::sinks::sink> BarAwareSink(std::shared_ptr<spdlog::sinks::sink> inner);

// One transfer on a display. Update and Finish never throw and never wait on
// another thread's rendering.
class TransferProgress {
 public:
  TransferProgress(const ProgressDisplay& display, std::string label);
  ~TransferProgress();  // Finish(false) unless finished
  TransferProgress(const TransferProgress&) = delete;
  TransferProgress& operator=(const TransferProgress&) = delete;

  // `done` of `total` bytes (0: unknown; `total_partial`: at least that).
  void Update(std::uint64_t done, std::uint64_t total, bool total_partial = false,
              std::string_view detail = {}) noexcept;
  // Clears the bar, or writes the final log line when the transfer lasted
  // long enough to be shown and was told of at least once (a bundle found in
  // the cache moves nothing and says nothing). Only the first call counts.
  void Finish(bool ok) noexcept;

 private:
  SteadyTime Now() const;
  ProgressSnapshot SnapshotLocked(SteadyTime now) const REQUIRES(mu_);
  void UpdateLocked(std::uint64_t done, std::uint64_t total, bool total_partial,
                    std::string_view detail) REQUIRES(mu_);

  const ProgressDisplay& display_;
  const std::string label_;
  const SteadyTime start_;
  Mutex mu_;
  TransferMeter meter_ GUARDED_BY(mu_);
  std::uint64_t total_ GUARDED_BY(mu_) = 0;
  bool total_partial_ GUARDED_BY(mu_) = false;
  std::string detail_ GUARDED_BY(mu_);
  bool updated_ GUARDED_BY(mu_) = false;  // bytes moved (a cache hit moves none)
  bool shown_ GUARDED_BY(mu_) = false;    // a bar or a line is out
  SteadyTime last_render_ GUARDED_BY(mu_){};
  bool finished_ GUARDED_BY(mu_) = false;
};

// Sums an image pull over its layers from the engine's progress messages:
// bytes downloaded of the layers' sizes, and how many layers are in place.
// Layers already on the machine count as in place and add no bytes.
class PullTally {
 public:
  void Add(const PullProgress& p);

  std::uint64_t done() const;
  std::uint64_t total() const;
  // Some layer's size is not known yet (the engine sizes a layer only when
  // its download starts), so total() is a lower bound.
  bool total_partial() const;
  // "2/5 layers", or empty before any layer is known.
  std::string Detail() const;

 private:
  enum class State { kWaiting, kDownloading, kDownloaded, kComplete, kExisting };
  struct Layer {
    State state = State::kWaiting;
    std::uint64_t size = 0;
    std::uint64_t downloaded = 0;
  };
  std::map<std::string, Layer> layers_;
};

}  // namespace cw
