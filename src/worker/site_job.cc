#include "worker/site_job.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/abandon.h"
#include "worker/gpu_figures.h"
#include "worker/metered.h"
#include "worker/slot_loop.h"

namespace cw {

metrics::JobUsage UsageOf(const JobResult& result) {
  metrics::JobUsage usage;
  usage.wall_seconds = result.timings.total_s;
  for (const ProgramOutcome* p : {&result.program, &result.ingestion}) {
    if (p->peak_memory_bytes) {
      usage.peak_memory_bytes =
          usage.peak_memory_bytes.value_or(0) + static_cast<double>(*p->peak_memory_bytes);
    }
    if (p->cpu_seconds) usage.cpu_seconds = usage.cpu_seconds.value_or(0) + *p->cpu_seconds;
  }
  return usage;
}

std::optional<BadJobTarget> BadJobTargetOf(const nlohmann::json& raw) {
  if (!raw.is_object() || !raw.contains("id") || !raw.contains("secret") ||
      !raw.contains("submissions_api_url") || !raw["submissions_api_url"].is_string() ||
      !raw["secret"].is_string() || !raw["id"].is_number_integer()) {
    return std::nullopt;
  }
  const auto user_pk = raw.find("user_pk");
  const auto is_scoring = raw.find("is_scoring");
  BadJobTarget target;
  target.submissions_api_url = raw["submissions_api_url"].get<std::string>();
  target.id = raw["id"].get<long long>();
  target.user_pk =
      user_pk != raw.end() && user_pk->is_number_integer() ? user_pk->get<long long>() : 0LL;
  target.secret = raw["secret"].get<std::string>();
  target.is_scoring =
      is_scoring != raw.end() && is_scoring->is_boolean() && is_scoring->get<bool>();
  return target;
}

SiteJobs::SiteJobs(const HttpClient& http, SiteReporterOptions reporter_options,
                   std::vector<std::unique_ptr<JobRunner>> runners, StatusBoard& board,
                   metrics::WorkerMetrics* metrics)
    : http_(http),
      reporter_options_(std::move(reporter_options)),
      runners_(std::move(runners)),
      board_(board),
      metrics_(metrics) {}

JobResult SiteJobs::Run(int slot, const RunArgs& args, CancelToken& cancel) {
  // A revoked (or shut down) job reports nothing more: its site calls and
  // transfers stop at once instead of retrying for minutes on its slot.
  // A job stopped by a time limit still reports Failed, so it keeps trying.
  AbandonScope abandon([&cancel] { return cancel.cancelled() && !cancel.report(); });
  auto reporter =
      std::make_shared<SiteReporter>(args.submissions_api_url, args.id, args.user_pk, args.secret,
                                     args.is_scoring, http_, reporter_options_);
  MeteredReporter metered(*reporter, metrics_, board_, slot);
  const std::string stage = args.is_scoring ? "scoring" : "prediction";
  if (metrics_) metrics_->JobStarted(stage);
  // Run never throws: a job's exception is already its Failed result.
  JobResult result = runners_.at(static_cast<std::size_t>(slot))->Run(args, metered, cancel);
  CountJob(stage, result);
  if (auto last = metered.last_status()) {
    spdlog::debug(
        "submission {} job returned {:.3f} ms after its last status update", args.id,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - *last)
            .count());
  }
  // The final report is out: return to the slot, which acks at once; the
  // live sockets close meanwhile (Finish() in the destructor).
  (void)closer_.Post([r = std::move(reporter)]() mutable { r.reset(); });
  return result;
}

void SiteJobs::CountJob(const std::string& stage, const JobResult& result) {
  if (!metrics_) return;
  const JobTimings& t = result.timings;
  const std::string outcome = OutcomeName(result.outcome);
  metrics_->JobFinished(
      stage, outcome,
      {t.fetch_s, t.unzip_s, t.pull_s, t.container_start_s, t.programs_s, t.upload_s, t.total_s});
  RecordJobGpuUsage(metrics_, stage, result.gpu);
  metrics_->JobUsed(stage, outcome, UsageOf(result));
}

void SiteJobs::ReportBadJob(const nlohmann::json& raw, const std::string& reason) {
  std::optional<BadJobTarget> target = BadJobTargetOf(raw);
  if (!target) return;
  SiteReporter reporter(target->submissions_api_url, target->id, target->user_pk, target->secret,
                        target->is_scoring, http_, reporter_options_);
  Status st = reporter.UpdateStatus(JobStatus::kFailed, reason);
  if (!st.ok()) {
    spdlog::warn("could not report the unreadable job: {}", st.message());
    if (metrics_ && !AbandonScope::Abandoned()) metrics_->SiteError("bad_job");
  }
}

}  // namespace cw
