#include "report/progress.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <cstdio>

namespace cw {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kDefaultColumns = 80;
// Narrower than this, the bar is left out and only the numbers are shown.
constexpr int kMinBarWidth = 10;

double Seconds(SteadyTime::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Printf(const char* format, double value, const char* unit) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, value, unit);
  return buf;
}

int Percent(std::uint64_t done, std::uint64_t total) {
  if (total == 0) return 0;
  return static_cast<int>(std::min<std::uint64_t>(100, done * 100 / total));
}

// A known total the numbers can be held against: not a lower bound, not beaten.
bool HasFraction(const ProgressSnapshot& s) { return s.total > 0 && !s.total_partial; }

std::string Rate(double bytes_per_second) {
  return FormatBytes(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

std::string TotalText(const ProgressSnapshot& s) {
  return FormatBytes(s.total) + (s.total_partial ? "+" : "");
}

}  // namespace

TransferMeter::TransferMeter(SteadyTime start, milliseconds window)
    : window_(window), last_{start, 0} {
  samples_.push_back(last_);
}

void TransferMeter::Record(SteadyTime now, std::uint64_t done) {
  if (done < last_.second) samples_.clear();
  last_ = {now, done};
  // A sample every twentieth of the window keeps the deque short however
  // often the transfer calls.
  if (samples_.empty() || now - samples_.back().first >= window_ / 20) samples_.push_back(last_);
  while (samples_.size() > 1 && samples_[1].first <= now - window_) samples_.pop_front();
}

double TransferMeter::BytesPerSecond() const {
  if (samples_.empty()) return 0;
  const auto& [t0, b0] = samples_.front();
  double dt = Seconds(last_.first - t0);
  if (dt < 0.1 || last_.second < b0) return 0;
  return static_cast<double>(last_.second - b0) / dt;
}

std::optional<seconds> TransferMeter::Eta(std::uint64_t total) const {
  double rate = BytesPerSecond();
  if (rate <= 0 || total <= last_.second) return std::nullopt;
  double left = static_cast<double>(total - last_.second) / rate;
  // Past a year the number means "never"; it must not overflow either.
  if (left > 365.0 * 24 * 3600) return std::nullopt;
  return seconds(static_cast<long long>(left + 0.5));
}

std::string FormatBytes(std::uint64_t bytes) {
  if (bytes < 1000) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  const char* units[] = {"kB", "MB", "GB", "TB", "PB"};
  int i = -1;
  while (v >= 1000 && i < 4) {
    v /= 1000;
    ++i;
  }
  // Gigabytes and up get two decimals: a 20 GB pull still moves visibly.
  return Printf(i >= 2 ? "%.2f %s" : "%.1f %s", v, units[i]);
}

std::string FormatDuration(milliseconds d) {
  long long ms = std::max<long long>(0, d.count());
  long long s = ms / 1000;
  char buf[32];
  if (ms < 10000 && ms % 1000 != 0) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000);
  } else if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  }
  return buf;
}

std::string ProgressLogLine(const ProgressSnapshot& s) {
  std::string line = s.label + ": " + FormatBytes(s.done);
  if (s.total > 0) line += " of " + TotalText(s);
  if (HasFraction(s)) line += " (" + std::to_string(Percent(s.done, s.total)) + "%)";
  line += ", " + Rate(s.bytes_per_second);
  if (s.eta && HasFraction(s)) line += ", " + FormatDuration(*s.eta) + " left";
  if (!s.detail.empty()) line += ", " + s.detail;
  return line;
}

std::string ProgressFinalLine(const ProgressSnapshot& s, bool ok) {
  if (!ok) {
    return s.label + ": stopped after " + FormatBytes(s.done) + " in " + FormatDuration(s.elapsed);
  }
  std::string line =
      s.label + ": done, " + FormatBytes(s.done) + " in " + FormatDuration(s.elapsed);
  if (s.elapsed.count() > 0) {
    line += " (" +
            Rate(static_cast<double>(s.done) * 1000 / static_cast<double>(s.elapsed.count())) + ")";
  }
  if (!s.detail.empty()) line += ", " + s.detail;
  return line;
}

std::string ProgressBarLine(const ProgressSnapshot& s, int columns) {
  const int width = std::max(columns > 0 ? columns : kDefaultColumns, 20) - 1;
  std::string numbers;
  if (HasFraction(s)) {
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", Percent(s.done, s.total));
    numbers = std::string(pct) + "  " + FormatBytes(s.done) + "/" + FormatBytes(s.total);
  } else {
    numbers = FormatBytes(s.done);
    if (s.total > 0) numbers += "/" + TotalText(s);
  }
  numbers += "  " + Rate(s.bytes_per_second);
  if (s.eta && HasFraction(s)) numbers += "  ETA " + FormatDuration(*s.eta);
  if (!s.detail.empty()) numbers += "  " + s.detail;

  // The label and the bar share what the numbers leave: the bar takes what
  // the whole label leaves it, or when that is too little, half, and the
  // label is cut in its middle (an image's tag and a verb both matter).
  const int room = width - static_cast<int>(numbers.size()) - 2;
  std::string label = s.label;
  int bar = 0;
  if (HasFraction(s)) {
    bar = std::min(40, room - static_cast<int>(label.size()) - 3);
    if (bar < kMinBarWidth) bar = std::min(40, room / 2);
    if (bar < kMinBarWidth) bar = 0;
  }
  const int label_room = room - (bar > 0 ? bar + 3 : 0);
  if (label_room < static_cast<int>(label.size())) {
    if (label_room > 5) {
      int head = (label_room - 3) / 2;
      int tail = label_room - 3 - head;
      label = label.substr(0, head) + "..." + label.substr(label.size() - tail);
    } else {
      label.clear();
    }
  }

  std::string line = label;
  if (bar > 0) {
    int filled =
        static_cast<int>(static_cast<std::uint64_t>(bar) * std::min(s.done, s.total) / s.total);
    line += " [" + std::string(filled, '#') + std::string(bar - filled, '.') + "]";
  }
  line += "  " + numbers;
  if (static_cast<int>(line.size()) > width) line.resize(std::max(width, 0));
  line.resize(std::max(width, 0), ' ');
  return "\r" + line;
}

int TerminalColumns(int fd) {
  struct winsize ws {};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

TransferProgress::TransferProgress(const ProgressDisplay& display, std::string label)
    : display_(display),
      label_(std::move(label)),
      start_(Now()),
      meter_(start_, display.rate_window) {}

TransferProgress::~TransferProgress() { Finish(false); }

SteadyTime TransferProgress::Now() const {
  return display_.now ? display_.now() : std::chrono::steady_clock::now();
}

ProgressSnapshot TransferProgress::SnapshotLocked(SteadyTime now) const {
  ProgressSnapshot s;
  s.label = label_;
  s.done = meter_.done();
  s.total = total_;
  s.total_partial = total_partial_;
  s.bytes_per_second = meter_.BytesPerSecond();
  s.eta = meter_.Eta(total_);
  s.elapsed = std::chrono::duration_cast<milliseconds>(now - start_);
  s.detail = detail_;
  return s;
}

void TransferProgress::Update(std::uint64_t done, std::uint64_t total, bool total_partial,
                              std::string_view detail) noexcept {
  if (!display_.enabled()) return;
  // Another update rendering: skip this one rather than wait for it.
  if (!mu_.TryLock()) return;
  try {
    UpdateLocked(done, total, total_partial, detail);
  } catch (...) {
    // Showing progress is never worth failing the transfer it shows.
  }
  mu_.Unlock();
}

void TransferProgress::UpdateLocked(std::uint64_t done, std::uint64_t total, bool total_partial,
                                    std::string_view detail) {
  if (finished_) return;
  const SteadyTime now = Now();
  meter_.Record(now, done);
  updated_ = true;
  total_ = total;
  total_partial_ = total_partial;
  detail_.assign(detail);
  if (now - start_ < display_.start_after) return;
  const bool bar = display_.style == ProgressStyle::kBar;
  if (shown_ && now - last_render_ < (bar ? display_.redraw_every : display_.line_every)) return;
  ProgressSnapshot s = SnapshotLocked(now);
  if (bar) {
    display_.write(ProgressBarLine(s, display_.columns ? display_.columns() : 0));
  } else {
    display_.write(ProgressLogLine(s));
  }
  shown_ = true;
  last_render_ = now;
}

void TransferProgress::Finish(bool ok) noexcept {
  if (!display_.enabled()) return;
  try {
    MutexLock lock(mu_);
    if (finished_) return;
    finished_ = true;
    const SteadyTime now = Now();
    if (display_.style == ProgressStyle::kBar) {
      if (!shown_) return;
      int columns = display_.columns ? display_.columns() : 0;
      int width = std::max(columns > 0 ? columns : kDefaultColumns, 20) - 1;
      display_.write("\r" + std::string(width, ' ') + "\r");
      return;
    }
    if (!updated_ || (!shown_ && now - start_ < display_.start_after)) return;
    display_.write(ProgressFinalLine(SnapshotLocked(now), ok));
  } catch (...) {
  }
}

void PullTally::Add(const PullProgress& p) {
  const std::string& st = p.status;
  // Messages without a layer ("Digest: ...", "Status: ...") and the one that
  // names the tag ("Pulling from library/x", id "latest") are not layers.
  if (p.layer_id.empty() || st.rfind("Pulling from", 0) == 0) return;
  const bool known = layers_.count(p.layer_id) > 0;
  if (!known && st != "Pulling fs layer" && st != "Waiting" && st != "Downloading" &&
      st != "Verifying Checksum" && st != "Download complete" && st != "Extracting" &&
      st != "Pull complete" && st != "Already exists" && st.rfind("Retrying", 0) != 0) {
    return;
  }
  Layer& l = layers_[p.layer_id];
  if (st == "Downloading") {
    if (p.total > 0) l.size = static_cast<std::uint64_t>(p.total);
    if (p.current >= 0) l.downloaded = static_cast<std::uint64_t>(p.current);
    l.state = State::kDownloading;
  } else if (st == "Verifying Checksum" || st == "Download complete" || st == "Extracting") {
    l.downloaded = l.size;
    l.state = State::kDownloaded;
  } else if (st == "Pull complete") {
    l.downloaded = l.size;
    l.state = State::kComplete;
  } else if (st == "Already exists") {
    l.state = State::kExisting;
  } else if (st.rfind("Retrying", 0) == 0) {
    l.downloaded = 0;
    l.state = State::kWaiting;
  }
}

std::uint64_t PullTally::done() const {
  std::uint64_t sum = 0;
  for (const auto& [id, l] : layers_) {
    if (l.state != State::kExisting) sum += l.downloaded;
  }
  return sum;
}

std::uint64_t PullTally::total() const {
  std::uint64_t sum = 0;
  for (const auto& [id, l] : layers_) {
    if (l.state != State::kExisting) sum += l.size;
  }
  return sum;
}

bool PullTally::total_partial() const {
  // A layer that finished without ever reporting a size was too small to
  // show progress for; only one still waiting leaves the total open.
  return std::any_of(layers_.begin(), layers_.end(), [](const auto& kv) {
    return kv.second.state == State::kWaiting && kv.second.size == 0;
  });
}

std::string PullTally::Detail() const {
  if (layers_.empty()) return "";
  std::size_t in_place = std::count_if(layers_.begin(), layers_.end(), [](const auto& kv) {
    return kv.second.state == State::kComplete || kv.second.state == State::kExisting;
  });
  return std::to_string(in_place) + "/" + std::to_string(layers_.size()) + " layers";
}

namespace {

// Held while anything is written to the bar's line. Constant-initialized, so
// it is there before any static constructor may log.
Mutex bar_mu;
std::size_t bar_width GUARDED_BY(bar_mu) = 0;  // 0 when no bar is drawn

class ClearingSink : public spdlog::sinks::sink {
 public:
  explicit ClearingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    BarLine::WriteClear([&] { inner_->log(msg); });
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

void BarLine::Draw(const std::string& text) {
  MutexLock lock(bar_mu);
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  // A bar ends where the cursor is; blanks that cleared one leave nothing.
  const bool blank = text.find_first_not_of("\r ") == std::string::npos;
  bar_width = blank ? 0 : text.size();
}

void BarLine::WriteClear(const std::function<void()>& write) {
  // One lock over both: a bar drawn by another thread between the clear and
  // the text would end up in front of the text.
  MutexLock lock(bar_mu);
  if (bar_width > 0) {
    std::string blanks = "\r" + std::string(bar_width, ' ') + "\r";
    std::fputs(blanks.c_str(), stderr);
    bar_width = 0;
  }
  write();
  std::fflush(stderr);
}

std::shared_ptr<spdlog::sinks::sink> BarAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<ClearingSink>(std::move(inner));
}

}  // namespace cw
