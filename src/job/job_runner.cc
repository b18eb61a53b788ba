#include "job/job_runner.h"

#include <atomic>
#include <exception>
#include <memory>
#include <thread>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "archive/zip.h"
#include "common/elapsed.h"
#include "common/files.h"
#include "common/log.h"
#include "job/bundle_fetcher.h"
#include "job/image_puller.h"
#include "job/job_filesystem.h"
#include "job/job_containers.h"
#include "job/legacy.h"
#include "job/network_holders.h"
#include "job/program_exit.h"
#include "job/program_output.h"
#include "job/program_run.h"
#include "job/supervisor.h"
#include "job/watchers.h"

namespace cw {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// One run of JobRunner::Run: composes the parts (job/*.h) in the order of
// the pipeline (docs/design.md).
//
// Thread rules: a Job lives on the thread that called JobRunner::Run, and
// its members are that thread's, except:
//   - containers_ (JobContainers, its own lock): added to by the thread that
//     creates the ingestion program's container, read by the disk watcher;
//   - wakeup_ (its own lock): notified by the programs' threads and the
//     disk watcher;
//   - output_too_large_, output_bytes_seen_ (atomics): written by the disk
//     watcher; prepared_bytes_ (atomic): by both container creators;
//   - programs_: filled before any program's thread starts and not changed
//     until they are all joined; the runs' own state follows
//     job/program_run.h.
// Every thread a Job starts (the ingestion program's creator, the programs',
// the watchers', the fetches' and the pull's) is joined before the method
// that started it returns, or by the RAII owner an exception unwinds.
class Job {
 public:
  Job(const JobEnvironment& env, Storage& storage, BundleCache& cache, ContainerEngine& engine,
      const RunArgs& args, Reporter& reporter, CancelToken& cancel)
      : env_(env), storage_(storage), cache_(cache), engine_(engine), args_(args),
        reporter_(reporter), cancel_(cancel) {}

  ~Job() {
    // An exception ended Run: the containers go first, which ends the
    // programs' streams, so programs_ (destroyed after) joins at once.
    containers_.RemoveAll(engine_);
    if (image_held_) env_.images->Release(args_.docker_image);
  }

  JobResult Run();

 private:
  std::string Url(const std::string& url) const {
    return env_.rewrite_url ? env_.rewrite_url(url) : url;
  }
  const char* Stage() const { return StageName(args_.is_scoring); }
  std::string HostDetails() const {
    return std::string(args_.is_scoring ? "scoring_hostname-" : "ingestion_hostname-") +
           env_.hostname;
  }
  fs::path PredictionMetadata() const { return folder_.input() / "res" / "metadata"; }

  // The folder, the image and the bundles.
  Status Prepare();
  // Both programs' containers, at once; into programs_.
  Status CreatePrograms();
  // The container of the program of `kind`; null when it has none to run.
  Result<std::unique_ptr<ProgramRun>> CreateProgram(ProgramKind kind);
  Result<std::string> CreateContainer(ContainerSpec spec, const std::string& label);
  // Runs them to their end or until stopped, with their watchers.
  Status RunPrograms();
  void StartWatchers(WatcherThreads& watchers);
  // Why the programs stopped, or how they ended, as the job's status.
  Status Verdict(ProgramsStop stop);
  // How the programs ended, for the verdict and the notes on it.
  std::vector<ProgramEnd> Ends() const;
  Status UploadLogs();
  Status Finish();
  // Removes the containers and (unless kept) the job folder, when called.
  std::function<void()> Cleanup();
  // Reports Failed. `details` (status_details) is made from `why` when empty:
  // "Docker image pull failed: ..." or "Submission failed: ... See logs ...".
  void Fail(const Status& why, std::string details = "");
  Status CheckCancel() const {
    if (cancel_.cancelled()) return Cancelled(cancel_.reason());
    return Status::Ok();
  }

  const JobEnvironment& env_;
  Storage& storage_;
  BundleCache& cache_;
  ContainerEngine& engine_;
  const RunArgs& args_;
  Reporter& reporter_;
  CancelToken& cancel_;

  JobResult result_;
  std::string job_uid_ = RandomHex(6);
  JobFolder folder_;
  JobContainers containers_;
  Wakeup wakeup_;  // before programs_: their threads notify it until joined
  std::vector<std::unique_ptr<ProgramRun>> programs_;
  std::string time_limit_error_;  // reported once the logs are up
  bool pull_failed_ = false;      // the job's reason is its image's pull
  // Set by the disk watcher when the programs wrote more than
  // MAX_OUTPUT_SIZE_GB; the supervising loop then stops them.
  std::atomic<bool> output_too_large_{false};
  std::atomic<std::uintmax_t> output_bytes_seen_{0};
  std::atomic<std::uintmax_t> prepared_bytes_{0};  // unpacked or copied before the programs ran
  std::uintmax_t used_before_programs_ = 0;  // on the job's own filesystem, when it has one
  bool image_held_ = false;  // Acquired from env_.images
};

JobResult Job::Run() {
  const auto start = Clock::now();
  Status st = Prepare();
  if (st.ok()) st = CheckCancel();
  if (st.ok()) {
    if (!args_.is_scoring) {
      Status patched = reporter_.UpdateStatus(JobStatus::kRunning, HostDetails());
      if (!patched.ok()) spdlog::warn("could not report Running: {}", patched.ToString());
    }
    // Rootless on cgroups v1: the participant and organizer learn that the
    // limits they count on do not hold here.
    if (!env_.unenforced_limits.empty()) reporter_.LiveError(env_.unenforced_limits);
    // Caught here as well as in JobRunner::Run, so that what the programs
    // wrote still goes up (an exception past their threads' join).
    try {
      st = RunPrograms();
    } catch (const std::exception& e) {
      st = Internal(std::string("The worker hit an internal error while running this job: ") +
                    e.what());
    } catch (...) {
      st = Internal("The worker hit an internal error while running this job: an unknown exception");
    }
  }
  // Logs go up whatever happened to the programs (a failure, the time limit,
  // the task's own time limit): they are how a participant finds out what
  // went wrong. Not after a revoke or a shutdown, which report nothing more.
  if (!programs_.empty() && (!cancel_.cancelled() || cancel_.report())) {
    auto up = Clock::now();
    Status logs = UploadLogs();
    result_.timings.upload_s += SecondsSince(up);
    if (st.ok()) st = logs;
  }
  if (!time_limit_error_.empty()) {
    Status sent = reporter_.ReportError(ErrorType::kExecutionTimeLimitExceeded,
                                        time_limit_error_, args_.is_scoring);
    if (!sent.ok()) spdlog::warn("could not report the time limit: {}", sent.ToString());
  }
  if (st.ok()) st = CheckCancel();
  if (st.ok()) st = Finish();

  if (st.ok()) {
    result_.outcome = JobResult::Outcome::kSucceeded;
  } else if (cancel_.cancelled() && cancel_.report()) {
    // The task's own time limit (Celery's): its words alone, as the Python
    // worker sends "Execution time limit exceeded.".
    Fail(Timeout(cancel_.reason()), cancel_.reason());
  } else if (st.code() == Code::kCancelled || cancel_.cancelled()) {
    result_.outcome = JobResult::Outcome::kCancelled;
    result_.failure = st.code() == Code::kCancelled ? st : Cancelled(cancel_.reason());
  } else {
    Fail(st);
  }
  if (env_.keep_job_dir) result_.job_dir = folder_.root();
  result_.timings.total_s = SecondsSince(start);
  result_.cleanup = Cleanup();
  if (!env_.defer_cleanup) {
    result_.cleanup();
    result_.cleanup = nullptr;
  }
  return std::move(result_);
}

std::function<void()> Job::Cleanup() {
  std::vector<std::string> ids = containers_.Take();
  fs::path folder = env_.keep_job_dir ? fs::path() : folder_.root();
  ContainerEngine& engine = engine_;
  std::shared_ptr<ImageBudget> images = image_held_ ? env_.images : nullptr;
  image_held_ = false;
  std::string image = args_.docker_image;
  FolderSandbox sandbox = SandboxFor(env_, engine_);  // what the worker's user cannot remove
  return [&engine, ids, folder, images, image, sandbox] {
    JobContainers::Remove(engine, ids);
    if (!folder.empty()) JobFolder::Remove(folder, sandbox);
    if (!images) return;
    images->Release(image);
    auto swept = images->Enforce();
    if (!swept.ok()) {
      spdlog::warn("image store not checked against MAX_IMAGE_STORE_GB: {}", swept.status().message());
    } else if (!swept->removed.empty()) {
      spdlog::info("image store {:.2f} GB -> {:.2f} GB (MAX_IMAGE_STORE_GB): removed {}",
                   swept->before_bytes / 1e9, swept->after_bytes / 1e9,
                   fmt::join(swept->removed, ", "));
    }
  };
}

void Job::Fail(const Status& why, std::string details) {
  result_.outcome = JobResult::Outcome::kFailed;
  result_.failure = why;
  spdlog::error("submission {} {} job failed: {}", args_.id, Stage(), why.ToString());
  if (details.empty()) {
    details = pull_failed_ ? "Docker image pull failed: " + why.message()
                           : SubmissionFailedDetails(why.message());
  }
  Status patched = reporter_.UpdateStatus(JobStatus::kFailed, details);
  if (!patched.ok()) spdlog::error("could not report Failed: {}", patched.ToString());
}

Status Job::Prepare() {
  // The job's first status names this worker (the site records it from any
  // status whose details do), so a job that fails while preparing is still
  // traced to its worker. Prediction: Preparing now, Running when the
  // programs start; scoring: Running now, as the Python worker sends it.
  JobStatus first = args_.is_scoring ? JobStatus::kRunning : JobStatus::kPreparing;
  Status patched = reporter_.UpdateStatus(first, HostDetails());
  if (!patched.ok()) spdlog::warn("could not report {}: {}", JobStatusName(first), patched.ToString());
  std::string prefix = "job-" + std::to_string(args_.id) + "-" + Stage() + "-";
  CW_ASSIGN_OR_RETURN(folder_, JobFolder::Create(env_, prefix));

  // Held from now: the image store's sweep after another job must not remove
  // the image between this pull and the programs' start.
  if (env_.images) {
    env_.images->Acquire(args_.docker_image);
    image_held_ = true;
  }
  ImagePuller puller(engine_, args_.docker_image, env_.pull_policy, env_.progress, cancel_,
                     env_.container.podman);
  const bool s = args_.is_scoring;
  BundleFetchContext context{storage_, cache_, cancel_, env_, folder_.work(), folder_.bundles(),
                             args_.id, nullptr};
  if (!s) {
    context.on_submission_md5 = [this](const std::string& sum) {
      Status sent = reporter_.ReportMd5(sum);
      if (!sent.ok()) spdlog::warn("could not report the submission's md5: {}", sent.ToString());
    };
  }
  BundleFetcher fetcher(std::move(context));
  Status fetched = fetcher.FetchAll({
      {args_.program_data, "program", s ? "scoring program" : "submission", false},
      {args_.ingestion_program, "ingestion_program", "ingestion program", false},
      {args_.input_data, "input_data", "input data", true},
      {args_.reference_data, "input/ref", "reference data", true},
      {s ? args_.prediction_result : std::string(), "input/res", "prediction output", false},
  });
  result_.timings.fetch_s = fetcher.fetch_seconds();
  result_.timings.unzip_s = fetcher.unzip_seconds();
  prepared_bytes_ += fetcher.prepared_bytes();
  if (fetched.ok()) fetched = CheckCancel();
  Status pulled = puller.Finish(/*stop=*/!fetched.ok());
  result_.timings.pull_s = puller.seconds();
  if (puller.refused()) {
    Status sent = reporter_.ReportError(ErrorType::kDockerImagePullFail, pulled.message(),
                                        args_.is_scoring);
    if (!sent.ok()) spdlog::warn("could not report the pull failure: {}", sent.ToString());
    reporter_.LiveError(pulled.message());
    pull_failed_ = true;
  }
  return fetched.ok() ? pulled : fetched;
}

Status Job::CreatePrograms() {
  // Both containers are created before either starts, so a bad image or spec
  // fails the job before any time is counted; at the same time, as each
  // create is an engine round trip (about 35 ms on an idle 2-CPU machine).
  const LogFields fields = CurrentLogFields();  // the job's, for the thread's lines
  Result<std::unique_ptr<ProgramRun>> ingestion = std::unique_ptr<ProgramRun>();
  std::thread ingestion_creator([this, &ingestion, fields] {
    ScopedLogFields scoped(fields);
    try {
      ingestion = CreateProgram(ProgramKind::kIngestion);
    } catch (const std::exception& e) {
      ingestion = Internal(std::string("The worker hit an internal error while creating the "
                                       "ingestion program's container: ") + e.what());
    } catch (...) {
      ingestion = Internal("The worker hit an internal error while creating the ingestion "
                           "program's container: an unknown exception");
    }
  });
  Result<std::unique_ptr<ProgramRun>> program = std::unique_ptr<ProgramRun>();
  try {
    program = CreateProgram(ProgramKind::kProgram);
  } catch (...) {
    ingestion_creator.join();
    throw;
  }
  ingestion_creator.join();
  for (auto* created : {&program, &ingestion}) {
    CW_RETURN_IF_ERROR(created->status());
    if (**created) programs_.push_back(std::move(**created));
  }
  return Status::Ok();
}

Result<std::unique_ptr<ProgramRun>> Job::CreateProgram(ProgramKind kind) {
  const bool ingestion = kind == ProgramKind::kIngestion;
  const fs::path dir = folder_.program(kind);
  const std::string label = ProgramLabel(kind, args_.is_scoring);
  // The scoring step is judged by its scoring program's exit code, as the
  // Python worker judges it: a scoring program that cannot run leaves none,
  // and fails the job (there, after the other program ran; here, before).
  const bool scoring_program = !ingestion && args_.is_scoring;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (scoring_program) return InvalidInput("This scoring job has no scoring program");
    return std::unique_ptr<ProgramRun>();
  }

  CW_ASSIGN_OR_RETURN(ProgramMetadata meta, ReadProgramMetadata(dir));
  if (!meta.has_metadata) {
    if (ingestion || scoring_program) {
      return InvalidInput("The " + label + " has no metadata.yaml (or metadata) file");
    }
    // A results-only submission: its files are the predictions.
    spdlog::info("{}: {} has no metadata, copying its files to the output", args_.id,
                 label);
    CW_RETURN_IF_ERROR(CopyTreeContents(dir, folder_.output()));
    prepared_bytes_ += TreeSize(folder_.output());
    return std::unique_ptr<ProgramRun>();
  }
  if (!meta.command) {
    if (ingestion || scoring_program) {
      return InvalidInput("The " + label + "'s " + meta.file.filename().string() +
                          " has no 'command'");
    }
    spdlog::info("{}: {} has no command; the ingestion program uses it", args_.id, label);
    return std::unique_ptr<ProgramRun>();
  }
  std::string command = ReplaceLegacyVariables(*meta.command, kind, args_.is_scoring,
                                               args_.ingestion_only_during_scoring);

  // A fresh namespace of its own, removed with the job's containers (after
  // this program's: JobContainers removes the last added first).
  std::string holder;
  if (!env_.container.network_disabled && env_.network_holders) {
    CW_ASSIGN_OR_RETURN(holder, env_.network_holders->Take(label));
    if (!holder.empty()) containers_.Add(holder);
  }
  ProgramContainer container = ProgramContainerSpec(args_, kind, command, job_uid_, folder_, env_,
                                                    holder.empty() ? "" : "container:" + holder);
  for (const fs::path& p : container.mount_sources) fs::create_directories(p, ec);
  spdlog::info("{}: {} runs `{}` in {}", args_.id, label, command, container.spec.image);
  CW_ASSIGN_OR_RETURN(std::string id, CreateContainer(std::move(container.spec), label));
  containers_.Add(id);
  auto output = std::make_unique<ProgramOutput>(kind, reporter_, folder_.logs(), env_.max_log_bytes);
  if (!output->ok()) return IoError("cannot create log files in " + folder_.logs().string());
  return std::make_unique<ProgramRun>(kind, label, id, std::move(output),
                                      ingestion ? args_.ingestion_stdout_url : args_.stdout_url,
                                      ingestion ? args_.ingestion_stderr_url : args_.stderr_url);
}

Result<std::string> Job::CreateContainer(ContainerSpec spec, const std::string& label) {
  // The Python worker's name is taken when the same submission runs twice
  // on this host, or when its prediction's container is still being removed
  // as its scoring job starts: then a short suffix.
  const std::string python_name = spec.name;
  auto id = engine_.Create(spec);
  for (int retry = 0; retry < 3 && !id.ok() && id.status().code() == Code::kAlreadyExists;
       ++retry) {
    std::string taken = spec.name;
    spec.name = python_name + "_" + RandomHex(3);
    spdlog::info("{}: container name {} is another container's; naming the {}'s {}", args_.id,
                 taken, label, spec.name);
    id = engine_.Create(spec);
  }
  if (id.ok()) return id;
  // The engine's daemon does not see the job folder where the worker says
  // it is: the classic wrong mount of a worker that runs in a container.
  if (id.status().message().find("bind source path does not exist") != std::string::npos) {
    std::string program_dir;  // the engine's view of it
    for (const Mount& m : spec.mounts) {
      if (m.container_path == "/app/program") program_dir = m.host_path;
    }
    return Status(Code::kUnavailable,
                  "The container engine cannot see this job's folder at " + program_dir +
                      " (HOST_DIRECTORY=" + env_.host_dir.string() +
                      "): the worker's admin must mount HOST_DIRECTORY at the same path in "
                      "the worker's container (or at /codabench), or set "
                      "WORKER_BASE_DIRECTORY to where the worker sees it (codabench-worker "
                      "doctor checks this)");
  }
  return id.status().Prefixed("The " + label + "'s container could not be created");
}

Status Job::RunPrograms() {
  auto t0 = Clock::now();
  CW_RETURN_IF_ERROR(CreatePrograms());
  CW_RETURN_IF_ERROR(CheckCancel());
  if (folder_.own_filesystem()) {
    auto used = UsedBytes(folder_.work());  // not the programs' doing
    if (used.ok()) used_before_programs_ = *used;
  }

  const auto deadline = env_.env->Now() + std::chrono::seconds(args_.execution_time_limit);
  std::vector<ProgramRun*> runs;
  for (auto& run : programs_) {
    run->Start(engine_, cancel_, env_.container.nofile_limit, args_.id,
               [this] { wakeup_.Notify(); });
    runs.push_back(run.get());
  }
  WatcherThreads watchers(*env_.env);
  std::unique_ptr<GpuWindow> gpu_window;
  ProgramsStop stop = ProgramsStop::kAllEnded;
  try {
    StartWatchers(watchers);
    stop = Supervise(runs, deadline, cancel_, output_too_large_, wakeup_, [&] {
      result_.timings.container_start_s = SecondsSince(t0);
      // From here, not from the creation: an idle GPU while containers start
      // is not the programs' doing and would lower their mean.
      if (env_.gpu_usage && !programs_.empty()) gpu_window = env_.gpu_usage->Begin();
    }, *env_.env);
  } catch (...) {
    // No program outlives the loop that watches it (Job::Run reports this).
    containers_.KillAll(engine_);
    for (auto& run : programs_) run->Join();
    throw;
  }
  if (stop != ProgramsStop::kAllEnded) containers_.KillAll(engine_);
  for (auto& run : programs_) run->Join();
  watchers.StopAndJoin();  // after the programs: the detailed results' final look
  result_.timings.programs_s = SecondsSince(t0) - result_.timings.container_start_s;
  if (gpu_window) result_.gpu = gpu_window->Finish();

  for (auto& run : programs_) {
    ProgramEnd end = run->End();
    (end.kind == ProgramKind::kIngestion ? result_.ingestion : result_.program) = end.outcome;
    spdlog::info("{}: the {} ran {:.1f} s: {}{}", args_.id, end.label,
                 end.outcome.elapsed_seconds.value_or(0), DescribeUsage(end.outcome),
                 gpu_window ? DescribeSlotGpus(*env_.gpu_usage, result_.gpu) : std::string());
  }
  return Verdict(stop);
}

void Job::StartWatchers(WatcherThreads& watchers) {
  const StopSignal& stop = watchers.stop();
  if (!args_.detailed_results_url.empty()) {
    DetailedResultsWatch w{folder_.output(), folder_.root() / "detailed_results.snapshot.html",
                           Url(args_.detailed_results_url), storage_, reporter_,
                           env_.detailed_results_interval, env_.detailed_results_min_gap,
                           args_.id};
    watchers.Start("detailed results watcher", args_.id,
                   [w, &stop] { WatchDetailedResults(w, stop); });
  }
  if (programs_.empty()) return;
  if (env_.usage_figures) {
    std::vector<UsageTarget> targets;
    for (auto& run : programs_) targets.push_back(run->usage_target());
    watchers.Start("usage sampler", args_.id, [this, targets, &stop] {
      WatchUsage(engine_, targets, env_.usage_interval, stop);
    });
  }
  if (env_.limits.max_output_bytes == 0) return;
  const bool own = folder_.own_filesystem();
  DiskWatch w{folder_.Writable(), own ? used_before_programs_ : prepared_bytes_.load(),
              env_.limits.max_output_bytes, env_.limits.output_check_interval, engine_,
              [this] { return containers_.Ids(); }, args_.id, own ? folder_.work() : fs::path(),
              nullptr};
  if (FolderSandbox sandbox = SandboxFor(env_, engine_); !own && sandbox.usable()) {
    w.size_unreadable = [sandbox](const fs::path& d) { return SandboxSize(sandbox, d); };
  }
  watchers.Start("output size watcher", args_.id, [this, w, &stop] {
    WatchDisk(w, stop, [this](std::uintmax_t bytes) { output_bytes_seen_ = bytes; },
              [this] {
                output_too_large_ = true;
                wakeup_.Notify();
              });
  });
}

Status Job::Verdict(ProgramsStop stop) {
  CW_RETURN_IF_ERROR(CheckCancel());
  if (stop == ProgramsStop::kTimedOut) {
    std::string message = TimeLimitMessage(args_.execution_time_limit);
    // Sent after the logs are uploaded: the site appends it to the stderr
    // log, which the upload would otherwise overwrite.
    time_limit_error_ = message;
    reporter_.LiveError(message);
    return Timeout(message);
  }
  if (stop == ProgramsStop::kOutputTooLarge) {
    std::string message =
        OutputTooLargeMessage(env_.limits.max_output_bytes, output_bytes_seen_.load());
    reporter_.LiveError(message);
    return InvalidInput(message);
  }
  ExitVerdict verdict = JudgeProgramEnds(Ends(), args_.is_scoring, env_.container.memory_bytes,
                                         PredictionMetadata());
  for (const std::string& why : verdict.tolerated) {
    spdlog::info("{}: {} (the job goes on, as on Codabench's own worker)", args_.id, why);
    reporter_.LiveError(why + " (see its stderr log); the job goes on with what it wrote");
  }
  return verdict.status;
}

std::vector<ProgramEnd> Job::Ends() const {
  std::vector<ProgramEnd> ends;
  for (const auto& run : programs_) {
    ends.push_back(run->End());
    ends.back().oom_unknown = env_.container.podman;  // README "Engines"
  }
  return ends;
}

Status Job::UploadLogs() {
  Status first_error;
  for (auto& run : programs_) {
    for (auto [file, url] : {std::pair{&run->output().stdout_path(), &run->stdout_url()},
                             std::pair{&run->output().stderr_path(), &run->stderr_url()}}) {
      if (url->empty()) continue;
      // The site signs log URLs for application/zip (its default), and S3
      // refuses a PUT whose Content-Type differs from the signed one.
      Status st = storage_.Put(Url(*url), *file, "application/zip");
      if (!st.ok()) {
        spdlog::warn("{}: log upload failed: {}", args_.id, st.ToString());
        if (first_error.ok()) first_error = st.Prefixed("Could not upload the program's logs");
      }
    }
  }
  return first_error;
}

Status Job::Finish() {
  // CodaLab 1.5 scoring programs read elapsedTime; with only an ingestion
  // program it is the ingestion's (as the Python worker writes it).
  ProgramOutcome program = result_.program;
  if (!program.elapsed_seconds) program.elapsed_seconds = result_.ingestion.elapsed_seconds;
  CW_RETURN_IF_ERROR(
      WriteOutputMetadata(folder_.output(), program, result_.ingestion, result_.gpu, *env_.env));
  auto t0 = Clock::now();
  if (args_.is_scoring) {
    auto scores = ReadScores(folder_.output());
    if (!scores.ok()) {
      std::string earlier = EarlierExitNote(Ends(), PredictionMetadata());
      if (earlier.empty()) return scores.status();
      return Status(scores.status().code(), scores.status().message() + "; " + earlier);
    }
    result_.scores = std::move(*scores);
    Status sent = reporter_.ReportScores(result_.scores);
    if (!sent.ok()) return sent.Prefixed("Could not send the scores to the site");
  }
  fs::path zip = folder_.root() / "output.zip";
  CW_RETURN_IF_ERROR(
      CreateZip(folder_.output(), zip, [this] { return cancel_.cancelled(); }, *env_.env));
  const std::string& url = args_.is_scoring ? args_.scoring_result : args_.prediction_result;
  Status put = storage_.Put(Url(url), zip, "application/zip");
  result_.timings.upload_s += SecondsSince(t0);
  if (!put.ok()) return put.Prefixed("Could not upload the output");
  // Before the Scoring status: that is what queues the scoring job.
  if (!args_.is_scoring) cache_.Keep(Url(url), zip);
  // The Scoring status is what makes the site queue the scoring job, so it
  // goes only once the prediction output is in storage.
  return reporter_.UpdateStatus(args_.is_scoring ? JobStatus::kFinished : JobStatus::kScoring, "");
}

}  // namespace

JobResult JobRunner::Run(const RunArgs& args, Reporter& reporter, CancelToken& cancel) {
  // A bug or an exhausted resource (std::bad_alloc, a filesystem error) in
  // one job must end that job, never the worker: every slot and the broker
  // connection live in this process.
  std::string what;
  try {
    Job job(env_, storage_, cache_, engine_, args, reporter, cancel);
    return job.Run();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an unknown exception";
  }
  JobResult result;
  if (cancel.cancelled() && !cancel.report()) {
    result.outcome = JobResult::Outcome::kCancelled;
    result.failure = Cancelled(cancel.reason());
    return result;
  }
  result.outcome = JobResult::Outcome::kFailed;
  result.failure = Internal("The worker hit an internal error while running this job: " + what);
  spdlog::error("submission {} {} job: {}", args.id, args.is_scoring ? "scoring" : "prediction",
                result.failure.ToString());
  Status patched =
      reporter.UpdateStatus(JobStatus::kFailed, SubmissionFailedDetails(result.failure.message()));
  if (!patched.ok()) spdlog::error("could not report Failed: {}", patched.ToString());
  return result;
}

}  // namespace cw
