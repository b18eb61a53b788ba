// The job pipeline: one Codabench job (a prediction or a scoring run of one
// submission) from its run_args to its final status (contract §4). It talks
// to the outside only through Storage, BundleCache, ContainerEngine and
// Reporter, so run-local, the queue worker and the unit tests share it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "engine/engine.h"
#include "job/cancel.h"
#include "job/container_spec.h"  // ContainerSecurityOptions, the kLabel* names
#include "job/gpu_usage.h"
#include "job/job_environment.h"
#include "job/job_folder.h"      // JobsFolder, RemoveLeftoverJobFolders
#include "job/program_files.h"
#include "job/run_args.h"
#include "report/reporter.h"
#include "storage/bundle_cache.h"
#include "storage/storage.h"

namespace cw {

struct JobTimings {
  double fetch_s = 0;            // downloading bundles
  double unzip_s = 0;            // unpacking them
  double pull_s = 0;             // image pull (or the check that it is there)
  double container_start_s = 0;  // create + start until the programs run
  double programs_s = 0;         // from start to the last program's end
  double upload_s = 0;           // logs, output zip, scores
  double total_s = 0;
};

struct JobResult {
  enum class Outcome { kSucceeded, kFailed, kCancelled };
  Outcome outcome = Outcome::kFailed;
  Status failure;                // why, when not kSucceeded
  nlohmann::json scores;         // scoring jobs
  ProgramOutcome program;
  ProgramOutcome ingestion;
  JobTimings timings;
  GpuUsage gpu;                  // the slot's GPUs while the programs ran, when measured
  std::filesystem::path job_dir; // still there only when kept
  // With JobEnvironment::defer_cleanup: removes the job's containers and
  // folder. The caller runs it once the job's message is acked.
  std::function<void()> cleanup;

  bool ok() const { return outcome == Outcome::kSucceeded; }
};

class JobRunner {
 public:
  JobRunner(JobEnvironment env, Storage& storage, BundleCache& cache, ContainerEngine& engine)
      : env_(std::move(env)), storage_(storage), cache_(cache), engine_(engine) {}

  // Runs the job to its end and reports through `reporter`. Never throws;
  // every failure ends as a Failed status with a reason for the participant.
  // On cancel, the containers are stopped and nothing more is reported.
  JobResult Run(const RunArgs& args, Reporter& reporter, CancelToken& cancel);

  const JobEnvironment& environment() const { return env_; }

 private:
  JobEnvironment env_;
  Storage& storage_;
  BundleCache& cache_;
  ContainerEngine& engine_;
};

}  // namespace cw
