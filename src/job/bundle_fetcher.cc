#include "job/bundle_fetcher.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "archive/zip.h"
#include "common/abandon.h"
#include "common/elapsed.h"
#include "common/log.h"
#include "job/program_files.h"
#include "storage/hash.h"

namespace cw {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Status BundleFetcher::FetchAll(const std::vector<BundleFetch>& all) {
  std::vector<const BundleFetch*> wanted;
  for (const BundleFetch& b : all) {
    if (!b.url.empty()) wanted.push_back(&b);
  }
  if (wanted.empty()) return Status::Ok();
  std::vector<Status> results(wanted.size());
  std::vector<std::exception_ptr> thrown(wanted.size());
  std::atomic<int> first_failure{-1};
  auto fetch = [&](std::size_t i) {
    const BundleFetch& b = *wanted[i];
    try {
      results[i] = Fetch(b);
    } catch (...) {
      // Rethrown on the job's thread, where every exception of the pipeline
      // becomes the job's failure.
      thrown[i] = std::current_exception();
      results[i] = Internal("fetching the " + b.what + " stopped");
    }
    int none = -1;
    if (!results[i].ok()) first_failure.compare_exchange_strong(none, static_cast<int>(i));
  };
  const LogFields fields = CurrentLogFields();
  const AbandonScope* job_scope = AbandonScope::Current();
  std::vector<std::thread> others;
  for (std::size_t i = 1; i < wanted.size(); ++i) {
    others.emplace_back([&, i] {
      ScopedLogFields scoped(fields);
      AbandonScope abandon([&] { return first_failure.load() >= 0; }, job_scope);
      fetch(i);
    });
  }
  {
    AbandonScope abandon([&] { return first_failure.load() >= 0; }, job_scope);
    fetch(0);
  }
  for (auto& t : others) t.join();
  const int failed = first_failure.load();
  if (failed < 0) return Status::Ok();
  const auto f = static_cast<std::size_t>(failed);
  if (thrown[f]) std::rethrow_exception(thrown[f]);
  return results[f];
}

Status BundleFetcher::Fetch(const BundleFetch& b) {
  if (ctx_.cancel.cancelled()) return Cancelled(ctx_.cancel.reason());
  const JobEnvironment& env = ctx_.env;
  const std::string url = env.rewrite_url ? env.rewrite_url(b.url) : b.url;
  const std::string& what = b.what;
  auto t0 = Clock::now();
  fs::path zip = ctx_.zips / (fs::path(b.dest).filename().string() + ".zip");
  Result<std::optional<fs::path>> kept = std::optional<fs::path>();
  if (b.dest == "input/res") kept = ctx_.cache.Claim(url, zip);
  if (!kept.ok()) spdlog::warn("{}: {}; downloading it", ctx_.submission, kept.status().ToString());
  TransferProgress shown(env.progress, "downloading the " + what);
  TransferProgressFn progress;
  if (env.progress.enabled()) {
    progress = [&shown](std::uint64_t done, std::uint64_t total) { shown.Update(done, total); };
  }
  if (kept.ok() && kept->has_value()) {
    spdlog::info("{}: the {} is the one this worker uploaded; not downloaded again",
                 ctx_.submission, what);
  } else if (b.cached) {
    // Pinned into the job's folder: another slot's download may evict the
    // cache entry before this job has unpacked it.
    auto got = ctx_.cache.Get(url, ctx_.storage, zip, progress);
    shown.Finish(got.ok());
    if (!got.ok()) return got.status().Prefixed("Could not download the " + what);
    zip = *got;
  } else {
    Status st = ctx_.storage.Fetch(url, zip, progress);
    shown.Finish(st.ok());
    if (!st.ok()) return st.Prefixed("Could not download the " + what);
  }
  const double fetched = SecondsSince(t0);

  // The submission's checksum is read while it unpacks (both from the page
  // cache): it costs no time of its own. Sent after, as the Python worker does.
  std::future<Result<std::string>> md5;
  if (b.dest == "program" && ctx_.on_submission_md5) {
    md5 = std::async(std::launch::async, [this, zip] {
      return Md5FileHex(zip, [this] { return ctx_.cancel.cancelled(); });
    });
  }

  auto t1 = Clock::now();
  UnpackLimits limits;
  limits.max_bytes = env.limits.max_unpacked_bytes;
  limits.max_entries = env.limits.max_unpacked_files;
  limits.min_free_bytes = env.limits.min_free_bytes;
  limits.free_space_of = ctx_.zips;  // the host's disk, whatever `root` is on
  limits.cancelled = [this] { return ctx_.cancel.cancelled(); };
  auto stats = ExtractZip(zip, ctx_.root / b.dest, limits, *env.env);
  {
    MutexLock lock(mu_);
    fetch_s_ += fetched;
    unzip_s_ += SecondsSince(t1);
    if (stats.ok()) prepared_ += stats->bytes;
  }
  if (md5.valid()) {
    Result<std::string> sum = md5.get();
    if (sum.ok()) ctx_.on_submission_md5(*sum);
  }
  if (!stats.ok()) return stats.status().Prefixed("The " + what + " could not be unpacked");
  if (b.dest == "program" || b.dest == "ingestion_program") {
    auto hoisted = HoistSingleTopFolder(ctx_.root / b.dest);
    if (!hoisted.ok()) return hoisted.status();
  }
  spdlog::info("{}: {} unpacked ({} files, {} bytes)", ctx_.submission, what, stats->files,
               stats->bytes);
  return Status::Ok();
}

double BundleFetcher::fetch_seconds() const {
  MutexLock lock(mu_);
  return fetch_s_;
}

double BundleFetcher::unzip_seconds() const {
  MutexLock lock(mu_);
  return unzip_s_;
}

std::uintmax_t BundleFetcher::prepared_bytes() const {
  MutexLock lock(mu_);
  return prepared_;
}

}  // namespace cw
