// The site and storage as the queue worker uses them, counted for the
// metrics: wrappers that forward every call and count what failed for good
// (a call given up because the job was revoked or the worker stops is not
// the site's failure) and the bytes moved.
//
// Threads: a MeteredReporter belongs to one job and is used by that job's
// threads as its inner Reporter allows; last_status is read by the slot
// thread after the job returned. MeteredStorage is shared by all slots and
// holds no state of its own (WorkerMetrics is thread-safe).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "metrics/worker_metrics.h"
#include "report/reporter.h"
#include "storage/storage.h"
#include "worker/status_board.h"

namespace cw {

// The job's reporter, noting when the last status update went out: with the
// broker thread's "ack ... sent N ms after it was queued", the debug log
// gives the whole window between a job's final report and its ack.
class MeteredReporter : public Reporter {
 public:
  // `metrics` (may be null) counts the calls that failed for good; `board`
  // shows the slot's last status.
  MeteredReporter(Reporter& inner, metrics::WorkerMetrics* metrics, StatusBoard& board, int slot)
      : inner_(inner), metrics_(metrics), board_(board), slot_(slot) {}

  Status UpdateStatus(JobStatus status, const std::string& details) override;
  Status ReportMd5(const std::string& md5_hex) override;
  Status ReportError(ErrorType type, const std::string& message, bool is_scoring) override;
  Status ReportScores(const nlohmann::json& scores) override;
  void Log(ProgramKind kind, LogStream stream, std::string_view chunk) override {
    inner_.Log(kind, stream, chunk);
  }
  void LiveError(const std::string& message) override { inner_.LiveError(message); }
  void DetailedResultsUpdated() override { inner_.DetailedResultsUpdated(); }

  std::optional<std::chrono::steady_clock::time_point> last_status() const { return last_status_; }

 private:
  Status Counted(const char* call, Status st);

  Reporter& inner_;
  metrics::WorkerMetrics* metrics_;
  StatusBoard& board_;
  const int slot_;
  std::optional<std::chrono::steady_clock::time_point> last_status_;
};

// Storage that counts the bytes of each transfer that succeeded (the file's
// size, so nothing is buffered to count), and the transfers that failed for
// good.
class MeteredStorage : public Storage {
 public:
  MeteredStorage(Storage& inner, metrics::WorkerMetrics& metrics)
      : inner_(inner), metrics_(metrics) {}
  Status Fetch(const std::string& url, const std::filesystem::path& dest,
               const TransferProgressFn& progress = {}) override;
  Status Put(const std::string& url, const std::filesystem::path& src,
             const std::string& type) override;

 private:
  Storage& inner_;
  metrics::WorkerMetrics& metrics_;
};

}  // namespace cw
