#include "worker/bad_job_reports.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <utility>

#include "common/abandon.h"

namespace cw {

BadJobReports::BadJobReports(BadJobFn report, std::size_t max_pending)
    : report_(std::move(report)),
      max_pending_(max_pending),
      executor_("bad-job reports", max_pending) {}

BadJobReports::~BadJobReports() { Abandon(); }

void BadJobReports::Queue(nlohmann::json raw_args, std::string reason) {
  if (!report_ || abandoned_) return;
  auto task = [this, raw = std::move(raw_args), why = reason] {
    // Its HTTP retries give up once the cold shutdown says so.
    AbandonScope abandon([this] { return abandoned_.load(); });
    try {
      report_(raw, why);
    } catch (const std::exception& e) {
      spdlog::warn("could not report a bad job to the site: {}", e.what());
    } catch (...) {
      spdlog::warn("could not report a bad job to the site");
    }
  };
  if (!executor_.Post(std::move(task)) && !abandoned_) {
    spdlog::warn("not telling the site about a bad job ({} reports already waiting): {}",
                 max_pending_, reason);
  }
}

int BadJobReports::pending() const { return static_cast<int>(executor_.pending()); }

void BadJobReports::Abandon() {
  if (abandoned_.exchange(true)) return;
  const std::size_t left = executor_.pending();
  executor_.Shutdown(SerialExecutor::Leftovers::kDrop);
  if (left > 0) spdlog::warn("shutting down: {} bad-job report(s) to the site abandoned", left);
}

}  // namespace cw
