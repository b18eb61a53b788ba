// The slots: one thread per slot takes the next job from the ledger, runs
// it (JobFn: the pipeline, reporting to the site), tells the status board,
// finishes it in the ledger (the ack), and hands the job's cleanup (its
// containers and folder) to the janitor, so the slot takes its next job at
// once. Past a few cleanups waiting, the slot does it itself, so cleanups
// never fall behind jobs.
//
// Threads: Start and Join from one controlling thread (the Worker's owner);
// cleanups_pending from any thread. A job's exception is caught on its slot
// thread and becomes a Failed result and a bad-job report.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/serial_executor.h"
#include "job/cancel.h"
#include "job/job_runner.h"
#include "job/run_args.h"
#include "worker/bad_job_reports.h"
#include "worker/delivery_ledger.h"
#include "worker/status_board.h"

namespace cw {

// Runs one job to its end in slot `slot` (0 .. slots-1; the slot decides the
// job's GPUs and CPUs). The real one reports to the site (worker/site_job.h).
using JobFn = std::function<JobResult(int slot, const RunArgs&, CancelToken&)>;

// "succeeded", "failed", "cancelled": the words of the metrics and `status`.
inline const char* OutcomeName(JobResult::Outcome outcome) {
  switch (outcome) {
    case JobResult::Outcome::kSucceeded:
      return "succeeded";
    case JobResult::Outcome::kCancelled:
      return "cancelled";
    case JobResult::Outcome::kFailed:
      break;
  }
  return "failed";
}

class SlotLoop {
 public:
  // `status` may be null; `ledger`, `reports` and `status` must outlive it.
  SlotLoop(int slots, DeliveryLedger& ledger, JobFn run_job, BadJobReports& reports,
           StatusBoard* status);
  ~SlotLoop();  // Join()

  void Start();
  // After the ledger's Stop: waits for the slots to return, then for every
  // cleanup (containers and folders must not outlive the worker).
  void Join();
  // Cleanups waiting or running on the janitor.
  int cleanups_pending() const;

 private:
  void Run(int slot);
  // Runs the job; any exception is turned into a failed result and a report.
  JobResult RunSafely(int slot, LedgerJob& job);
  void Tidy(std::function<void()> cleanup);

  const int slots_;
  DeliveryLedger& ledger_;
  JobFn run_job_;
  BadJobReports& reports_;
  StatusBoard* status_;
  // Before the slots, after them in destruction: they hand it cleanups.
  SerialExecutor janitor_;
  std::vector<std::thread> threads_;  // touched only by Start and Join
};

}  // namespace cw
