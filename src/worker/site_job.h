// A queue job as the site sees it: run in its slot's JobRunner with a
// SiteReporter (counted for the metrics, shown on the status board), timed
// and counted per job; and the report of a message that could not be run.
//
// A job's live sockets flush and close (up to close_grace, 3 s) after its
// final report: on the closer's thread, so that the job's message is acked
// right after the report instead of after the flush.
//
// Threads: Run on the slot threads (slot i only ever uses runner i);
// ReportBadJob on the worker's reporting thread. The runners, the HTTP
// client, the board and the metrics are thread-safe or per slot; the closer
// is a SerialExecutor. Destroy it after the Worker that calls it: the
// destructor waits for the last sockets to close.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/serial_executor.h"
#include "job/cancel.h"
#include "job/job_runner.h"
#include "job/run_args.h"
#include "metrics/worker_metrics.h"
#include "site/http_client.h"
#include "site/site_reporter.h"
#include "worker/status_board.h"

namespace cw {

// The job's programs together: CPU adds up, and so do peaks, since the
// programs run side by side (a bound on the job's own peak).
metrics::JobUsage UsageOf(const JobResult& result);

// Enough of a bad message's run_args to reach the site, or nothing.
struct BadJobTarget {
  std::string submissions_api_url;
  long long id = 0;
  long long user_pk = 0;
  std::string secret;
  bool is_scoring = false;
};
// Never throws on a mistyped value: this is the report of one.
std::optional<BadJobTarget> BadJobTargetOf(const nlohmann::json& run_args);

class SiteJobs {
 public:
  // `metrics` may be null; `http`, `board` and `metrics` must outlive it.
  SiteJobs(const HttpClient& http, SiteReporterOptions reporter_options,
           std::vector<std::unique_ptr<JobRunner>> runners, StatusBoard& board,
           metrics::WorkerMetrics* metrics);

  // The Worker's JobFn.
  JobResult Run(int slot, const RunArgs& args, CancelToken& cancel);
  // The Worker's BadJobFn: tells the site, so the submission does not stay
  // "Submitted" forever.
  void ReportBadJob(const nlohmann::json& run_args, const std::string& reason);

 private:
  void CountJob(const std::string& stage, const JobResult& result);

  const HttpClient& http_;
  const SiteReporterOptions reporter_options_;
  const std::vector<std::unique_ptr<JobRunner>> runners_;
  StatusBoard& board_;
  metrics::WorkerMetrics* metrics_;
  SerialExecutor closer_{"reporter closer"};  // last: its tasks close reporters
};

}  // namespace cw
