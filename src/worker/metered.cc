#include "worker/metered.h"

#include "common/abandon.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

std::uintmax_t SizeOf(const fs::path& path) {
  std::error_code ec;
  std::uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

Status MeteredReporter::UpdateStatus(JobStatus status, const std::string& details) {
  Status st = Counted("status", inner_.UpdateStatus(status, details));
  last_status_ = std::chrono::steady_clock::now();
  if (st.ok()) board_.JobSiteStatus(slot_, JobStatusName(status));
  return st;
}

Status MeteredReporter::ReportMd5(const std::string& md5_hex) {
  return Counted("md5", inner_.ReportMd5(md5_hex));
}

Status MeteredReporter::ReportError(ErrorType type, const std::string& message, bool is_scoring) {
  return Counted("error", inner_.ReportError(type, message, is_scoring));
}

Status MeteredReporter::ReportScores(const nlohmann::json& scores) {
  return Counted("scores", inner_.ReportScores(scores));
}

Status MeteredReporter::Counted(const char* call, Status st) {
  if (!st.ok() && metrics_ && !AbandonScope::Abandoned()) metrics_->SiteError(call);
  return st;
}

Status MeteredStorage::Fetch(const std::string& url, const fs::path& dest,
                             const TransferProgressFn& progress) {
  Status st = inner_.Fetch(url, dest, progress);
  if (st.ok()) {
    metrics_.Downloaded(static_cast<double>(SizeOf(dest)));
  } else if (!AbandonScope::Abandoned()) {  // a revoke is not the site's failure
    metrics_.SiteError("download");
  }
  return st;
}

Status MeteredStorage::Put(const std::string& url, const fs::path& src, const std::string& type) {
  Status st = inner_.Put(url, src, type);
  if (st.ok()) {
    metrics_.Uploaded(static_cast<double>(SizeOf(src)));
  } else if (!AbandonScope::Abandoned()) {
    metrics_.SiteError("upload");
  }
  return st;
}

}  // namespace cw
