#include "worker/status_board.h"

#include <unistd.h>

#include <utility>

#include "site/url.h"

namespace cw {

namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Timestamps to the millisecond are plenty for a person, and keep the JSON short.
double Ms(double seconds) {
  return static_cast<double>(static_cast<long long>(seconds * 1000)) / 1000;
}

nlohmann::json UnixOrNull(double unix) {
  return unix > 0 ? nlohmann::json(Ms(unix)) : nlohmann::json(nullptr);
}

}  // namespace

StatusBoard::StatusBoard(std::string nodename, std::string version, std::vector<SlotInfo> slots,
                         std::size_t keep_last)
    : nodename_(std::move(nodename)),
      version_(std::move(version)),
      keep_last_(keep_last),
      started_unix_(UnixNow()),
      started_(Steady::now()) {
  for (auto& info : slots) slots_.push_back({std::move(info), std::nullopt});
}

std::string StatusBoard::SafeReason(const std::string& reason, const std::string& secret) {
  std::string line = reason.substr(0, reason.find_first_of("\r\n"));
  // Short secrets would mask ordinary words; Codabench's are UUIDs.
  if (secret.size() >= 8) {
    for (auto at = line.find(secret); at != std::string::npos; at = line.find(secret, at)) {
      line.replace(at, secret.size(), "***");
    }
  }
  // Signed URLs carry their signature in the query; messages are not
  // supposed to hold one, but the board must not depend on every caller.
  std::string out;
  std::size_t pos = 0;
  while (pos < line.size()) {
    std::size_t scheme = line.find("://", pos);
    if (scheme == std::string::npos) {
      out += line.substr(pos);
      break;
    }
    std::size_t start = line.find_last_of(" \t'\"(<", scheme);
    start = start == std::string::npos || start < pos ? pos : start + 1;
    std::size_t end = line.find_first_of(" \t'\")>", scheme);
    if (end == std::string::npos) end = line.size();
    out += line.substr(pos, start - pos);
    out += RedactUrl(line.substr(start, end - start));
    pos = end;
  }
  constexpr std::size_t kMax = 300;
  if (out.size() > kMax) {
    out.resize(kMax);
    // Not in the middle of a UTF-8 sequence: JSON output would refuse it.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
    out += "...";
  }
  return out;
}

void StatusBoard::BrokerState(bool connected) {
  MutexLock lock(mu_);
  if (connected == broker_connected_ && broker_since_unix_ > 0) return;
  if (connected) {
    if (broker_ever_connected_) ++broker_reconnects_;
    broker_ever_connected_ = true;
  }
  broker_connected_ = connected;
  broker_since_unix_ = UnixNow();
}

void StatusBoard::EngineState(bool ok, const std::string& reason) {
  std::string safe = ok ? "" : SafeReason(reason, "");
  MutexLock lock(mu_);
  engine_ok_ = ok;
  engine_reason_ = std::move(safe);
  engine_checked_unix_ = UnixNow();
}

void StatusBoard::Draining() {
  MutexLock lock(mu_);
  draining_ = true;
}

void StatusBoard::JobStarted(int slot, const std::string& task_id, long long submission,
                             bool scoring) {
  MutexLock lock(mu_);
  if (slot < 0 || static_cast<std::size_t>(slot) >= slots_.size()) return;
  slots_[slot].job = Running{task_id, submission, scoring ? "scoring" : "prediction",
                             "",      UnixNow(),  Steady::now()};
}

void StatusBoard::JobSiteStatus(int slot, const std::string& status) {
  MutexLock lock(mu_);
  if (slot < 0 || static_cast<std::size_t>(slot) >= slots_.size()) return;
  if (slots_[slot].job) slots_[slot].job->site_status = status;
}

void StatusBoard::JobEnded(int slot, const std::string& outcome, const std::string& reason,
                           const std::string& secret) {
  std::string safe = SafeReason(reason, secret);
  MutexLock lock(mu_);
  if (slot < 0 || static_cast<std::size_t>(slot) >= slots_.size() || !slots_[slot].job) return;
  const Running& job = *slots_[slot].job;
  Finished done;
  done.task_id = job.task_id;
  done.submission = job.submission;
  done.stage = job.stage;
  done.outcome = outcome;
  done.reason = std::move(safe);
  done.slot = slot;
  done.started_unix = job.started_unix;
  done.ended_unix = UnixNow();
  done.duration_s = std::chrono::duration<double>(Steady::now() - job.started).count();
  slots_[slot].job.reset();
  ++jobs_done_;
  last_.push_front(std::move(done));
  while (last_.size() > keep_last_) last_.pop_back();
}

nlohmann::json StatusBoard::Json() const {
  const double now_unix = UnixNow();
  const Steady::time_point now = Steady::now();
  MutexLock lock(mu_);
  nlohmann::json slots = nlohmann::json::array();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    nlohmann::json job = nullptr;
    if (s.job) {
      job = {{"task_id", s.job->task_id},
             {"submission", s.job->submission},
             {"stage", s.job->stage},
             {"site_status", s.job->site_status},
             {"started_at", UnixOrNull(s.job->started_unix)},
             {"running_s", Ms(std::chrono::duration<double>(now - s.job->started).count())}};
    }
    slots.push_back({{"slot", i}, {"gpus", s.info.gpus}, {"cpus", s.info.cpus}, {"job", job}});
  }
  nlohmann::json last = nlohmann::json::array();
  for (const Finished& f : last_) {
    last.push_back({{"task_id", f.task_id},
                    {"submission", f.submission},
                    {"stage", f.stage},
                    {"slot", f.slot},
                    {"outcome", f.outcome},
                    {"reason", f.reason},
                    {"started_at", UnixOrNull(f.started_unix)},
                    {"ended_at", UnixOrNull(f.ended_unix)},
                    {"duration_s", Ms(f.duration_s)}});
  }
  return {
      {"node", nodename_},
      {"version", version_},
      {"pid", static_cast<long long>(getpid())},
      {"now", Ms(now_unix)},
      {"started_at", Ms(started_unix_)},
      {"uptime_s", Ms(std::chrono::duration<double>(now - started_).count())},
      {"broker",
       {{"connected", broker_connected_},
        {"reconnects", broker_reconnects_},
        {"since", UnixOrNull(broker_since_unix_)}}},
      {"engine",
       {{"ok", engine_ok_ ? nlohmann::json(*engine_ok_) : nlohmann::json(nullptr)},
        {"reason", engine_reason_},
        {"checked_at", UnixOrNull(engine_checked_unix_)}}},
      {"draining", draining_},
      {"jobs_done", jobs_done_},
      {"slots", slots},
      {"last_jobs", last},
  };
}

}  // namespace cw
