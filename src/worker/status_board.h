// What `codabench-worker status` shows an admin: the worker (node, version,
// uptime), its broker and engine, each slot's job now, and the last jobs.
// serve.cc and Worker feed it as things happen; the status socket and the
// metrics server's /status answer with Json().
//
// Thread-safety: every method may be called from any thread (slot threads,
// the broker thread, the engine checker, the servers); mu_ guards all but
// the constants.
// No method blocks on anything but that mutex, so the broker thread may call.
//
// Secrets: the board is told only ids, stages and outcomes. A failure
// reason is the one text that comes from elsewhere; it is cut to its first
// line, URLs in it lose their query (signatures) and the job's secret is
// masked before it is kept.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/thread_annotations.h"

namespace cw {

class StatusBoard {
 public:
  // A slot's fixed resources, as the start-up log describes them.
  struct SlotInfo {
    std::vector<std::string> gpus;  // "0 (GPU-8f6c...)"; empty for a CPU slot
    std::string cpus;               // "0-7"; "" when not pinned
  };

  StatusBoard(std::string nodename, std::string version, std::vector<SlotInfo> slots,
              std::size_t keep_last = 20);

  // The broker connection changed; a connection after the first is a reconnect.
  void BrokerState(bool connected);
  // The engine answered a check (ok), or did not (reason).
  void EngineState(bool ok, const std::string& reason);
  // A warm shutdown began.
  void Draining();

  // `slot` (0 .. slots-1) starts task `task_id`. Out-of-range slots are ignored.
  void JobStarted(int slot, const std::string& task_id, long long submission, bool scoring);
  // The last status sent to the site for the slot's job ("Preparing", "Running").
  void JobSiteStatus(int slot, const std::string& status);
  // The slot's job ended. outcome: "succeeded", "failed", "cancelled".
  // `reason` (may be empty) is kept as a safe first line; `secret` is the
  // job's own, masked should the reason quote it.
  void JobEnded(int slot, const std::string& outcome, const std::string& reason,
                const std::string& secret = "");

  // The whole board (README "status" shows the fields).
  nlohmann::json Json() const;

  // The first line of `reason`, at most 300 characters, URLs redacted and
  // `secret` masked: what may be shown to whoever can read the status.
  static std::string SafeReason(const std::string& reason, const std::string& secret);

 private:
  using Steady = std::chrono::steady_clock;
  struct Running {
    std::string task_id;
    long long submission = 0;
    std::string stage;
    std::string site_status;
    double started_unix = 0;
    Steady::time_point started;
  };
  struct Finished {
    std::string task_id;
    long long submission = 0;
    std::string stage, outcome, reason;
    int slot = 0;
    double started_unix = 0, ended_unix = 0, duration_s = 0;
  };
  struct Slot {
    SlotInfo info;
    std::optional<Running> job;
  };

  const std::string nodename_, version_;
  const std::size_t keep_last_;
  const double started_unix_;
  const Steady::time_point started_;

  mutable Mutex mu_;  // guards everything below
  std::vector<Slot> slots_ GUARDED_BY(mu_);
  std::deque<Finished> last_ GUARDED_BY(mu_);  // newest first
  bool broker_connected_ GUARDED_BY(mu_) = false;
  bool broker_ever_connected_ GUARDED_BY(mu_) = false;
  int broker_reconnects_ GUARDED_BY(mu_) = 0;
  double broker_since_unix_ GUARDED_BY(mu_) = 0;   // of the current state; 0 before any
  std::optional<bool> engine_ok_ GUARDED_BY(mu_);  // none: not checked yet
  std::string engine_reason_ GUARDED_BY(mu_);
  double engine_checked_unix_ GUARDED_BY(mu_) = 0;
  bool draining_ GUARDED_BY(mu_) = false;
  long long jobs_done_ GUARDED_BY(mu_) = 0;
};

}  // namespace cw
