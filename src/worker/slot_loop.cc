#include "worker/slot_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <new>

#include "common/log.h"

namespace cw {

namespace {

// A cleanup that throws must not end the thread (nor the process).
void RunCleanup(const std::function<void()>& cleanup) {
  try {
    cleanup();
  } catch (const std::exception& e) {
    spdlog::error("a job's cleanup stopped: {}", e.what());
  } catch (...) {
    spdlog::error("a job's cleanup stopped on an unknown exception");
  }
}

}  // namespace

SlotLoop::SlotLoop(int slots, DeliveryLedger& ledger, JobFn run_job, BadJobReports& reports,
                   StatusBoard* status)
    : slots_(slots),
      ledger_(ledger),
      run_job_(std::move(run_job)),
      reports_(reports),
      status_(status),
      janitor_("janitor", static_cast<std::size_t>(std::max(2, slots))) {}

SlotLoop::~SlotLoop() { Join(); }

void SlotLoop::Start() {
  for (int i = 0; i < slots_; ++i) threads_.emplace_back([this, i] { Run(i); });
}

void SlotLoop::Join() {
  for (auto& t : threads_) t.join();
  threads_.clear();
  janitor_.Shutdown(SerialExecutor::Leftovers::kRun);
}

int SlotLoop::cleanups_pending() const { return static_cast<int>(janitor_.pending()); }

void SlotLoop::Run(int slot) {
  while (std::shared_ptr<LedgerJob> job = ledger_.Take(slot)) {
    if (status_) status_->JobStarted(slot, job->task_id, job->args.id, job->args.is_scoring);
    ScopedLogFields fields(
        {job->args.id, job->args.is_scoring ? "scoring" : "prediction", slot, job->task_id});
    spdlog::info("slot {}: submission {} {} job starts (task {})", slot, job->args.id,
                 job->args.is_scoring ? "scoring" : "prediction", job->task_id);
    JobResult result = RunSafely(slot, *job);
    const char* how = result.ok()                                        ? "finished"
                      : result.outcome == JobResult::Outcome::kCancelled ? "was cancelled"
                                                                         : "failed";
    const JobTimings& t = result.timings;
    spdlog::info(
        "slot {}: submission {} job {} in {:.2f}s (programs {:.2f}s, overhead {:.2f}s: "
        "fetch {:.2f}s, unzip {:.2f}s, image {:.2f}s, start {:.2f}s, upload {:.2f}s){}{}",
        slot, job->args.id, how, t.total_s, t.programs_s, t.total_s - t.programs_s, t.fetch_s,
        t.unzip_s, t.pull_s, t.container_start_s, t.upload_s, result.ok() ? "" : ": ",
        result.ok() ? "" : result.failure.message());
    if (status_) {
      status_->JobEnded(slot, OutcomeName(result.outcome),
                        result.ok() ? "" : result.failure.message(), job->args.secret);
    }
    ledger_.Finish(*job, result.outcome);
    // The final report and the ack are out: the job's containers and folder
    // go now, off the path between the site's status and the next job.
    if (result.cleanup) Tidy(std::move(result.cleanup));
  }
}

void SlotLoop::Tidy(std::function<void()> cleanup) {
  auto shared = std::make_shared<std::function<void()>>(std::move(cleanup));
  if (!janitor_.Post([shared] { RunCleanup(*shared); })) RunCleanup(*shared);
}

JobResult SlotLoop::RunSafely(int slot, LedgerJob& job) {
  std::string what;
  try {
    return run_job_(slot, job.args, job.cancel);
  } catch (const std::bad_alloc&) {
    what = "out of memory";
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an unknown exception";
  }
  // The job is over: report it Failed (off this thread) and let the slot ack
  // its message, so a message that trips the worker never comes back.
  spdlog::error("slot {}: submission {} job (task {}) hit an internal error: {}", slot, job.args.id,
                job.task_id, what);
  JobResult result;
  result.outcome = JobResult::Outcome::kFailed;
  result.failure = Internal("internal error: " + what);
  if (!job.cancel.cancelled() || job.cancel.report()) {
    reports_.Queue(job.raw_args,
                   "The worker hit an internal error while running this job: " + what);
  }
  return result;
}

}  // namespace cw
