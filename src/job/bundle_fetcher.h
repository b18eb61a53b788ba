// A job's bundles (its program(s), input and reference data, the prediction
// output a scoring job reads), from their URLs to folders in the job's
// folder: through the bundle cache or not, downloaded, unpacked under the
// job's limits, all at once; the submission's checksum read as it unpacks.
//
// Thread rules: FetchAll is called from one thread (the job's) at a time; it
// starts one thread per bundle past the first and joins them all before it
// returns, so nothing of the fetcher runs after. The timings and the
// prepared bytes are guarded by mu_ (bundles unpack at once); read them
// after FetchAll.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "job/cancel.h"
#include "job/job_environment.h"
#include "report/progress.h"
#include "storage/bundle_cache.h"
#include "storage/storage.h"

namespace cw {

struct BundleFetch {
  std::string url;   // empty: the job has none
  std::string dest;  // folder under the job's, which names the zip too
  std::string what;  // for messages: "input data"
  bool cached;       // through the bundle cache (datasets), or not (programs)
};

// What a fetch needs of its job, and no more.
struct BundleFetchContext {
  Storage& storage;
  BundleCache& cache;
  const CancelToken& cancel;
  const JobEnvironment& env;     // rewrite_url, progress, limits
  std::filesystem::path root;    // the job's work folder: each dest is under it
  std::filesystem::path zips;    // where the downloaded zips go
  long long submission = 0;      // for log lines
  // Set: the submission's md5 (its `program` bundle's zip) is computed while
  // it unpacks and given to this, on the job's thread.
  std::function<void(const std::string&)> on_submission_md5;
};

class BundleFetcher {
 public:
  explicit BundleFetcher(BundleFetchContext ctx) : ctx_(std::move(ctx)) {}

  // Each bundle downloads and unpacks into its own folder, all at once: a
  // dataset and a submission take the longer of the two, not the sum. The
  // first to fail stops the others (their transfers are abandoned within a
  // second) and is the result; an exception of a fetch thread is rethrown
  // here. Bundles without a URL are skipped.
  Status FetchAll(const std::vector<BundleFetch>& bundles);

  double fetch_seconds() const;
  double unzip_seconds() const;
  // What was unpacked (bytes), so the output limit does not count it.
  std::uintmax_t prepared_bytes() const;

 private:
  Status Fetch(const BundleFetch& b);

  const BundleFetchContext ctx_;
  mutable Mutex mu_;
  double fetch_s_ GUARDED_BY(mu_) = 0;
  double unzip_s_ GUARDED_BY(mu_) = 0;
  std::uintmax_t prepared_ GUARDED_BY(mu_) = 0;
};

}  // namespace cw
