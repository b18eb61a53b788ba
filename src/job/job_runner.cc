#include "job/job_runner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "archive/zip.h"
#include "common/abandon.h"
#include "common/fd.h"
#include "common/files.h"
#include "common/log.h"
#include "common/safe_file.h"
#include "common/units.h"
#include "job/bundle_fetcher.h"
#include "job/image_puller.h"
#include "job/legacy.h"
#include "job/program_exit.h"
#include "job/network_holders.h"
#include "storage/file_util.h"
#include "storage/hash.h"

namespace cw {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}


// Detailed results past this are not sent (an HTML page, images inlined).
constexpr std::uint64_t kMaxDetailedResultsBytes = 256ull << 20;


// One of a program's two output streams, on its way to a file on disk (which
// is uploaded when the program ends) and to the live reporter.
class LogFile {
 public:
  LogFile(fs::path path, std::uint64_t cap) : path_(std::move(path)), cap_(cap) {
    file_ = std::fopen(path_.c_str(), "wb");
  }
  ~LogFile() { Close(); }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  void Write(std::string_view data) {
    if (!file_) return;
    if (cap_ && written_ + data.size() > cap_) {
      if (!truncated_) {
        std::fwrite(data.data(), 1, cap_ - written_, file_);
        std::string note = "\n[codabench-worker: output past " + std::to_string(cap_ >> 20) +
                           " MiB was dropped]\n";
        std::fwrite(note.data(), 1, note.size(), file_);
        written_ = cap_;
        truncated_ = true;
      }
      return;
    }
    std::fwrite(data.data(), 1, data.size(), file_);
    written_ += data.size();
  }
  void Close() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }
  const fs::path& path() const { return path_; }
  bool ok() const { return file_ != nullptr; }

 private:
  fs::path path_;
  std::uint64_t cap_;
  std::FILE* file_ = nullptr;
  std::uint64_t written_ = 0;
  bool truncated_ = false;
};

struct ProgramRun {
  ProgramKind kind;
  std::string label;  // "submission", "scoring program", "ingestion program"
  std::string container_id;
  std::string stdout_url, stderr_url;
  std::unique_ptr<LogFile> out, err;
  ProgramOutcome outcome;
  bool oom_killed = false;  // the kernel stopped it at its memory limit
  // Highest figures sampled while it ran (-1: none yet).
  std::atomic<long long> peak_memory{-1};
  std::atomic<double> cpu_seconds{-1};
  Status error;
  Clock::time_point started;
  Clock::time_point running_since;  // valid once `running` is set
  std::atomic<bool> running{false};
  std::thread thread;
  std::atomic<bool> done{false};
};

class Job {
 public:
  Job(const JobEnvironment& env, Storage& storage, BundleCache& cache, ContainerEngine& engine,
      const RunArgs& args, Reporter& reporter, CancelToken& cancel)
      : env_(env), storage_(storage), cache_(cache), engine_(engine), args_(args),
        reporter_(reporter), cancel_(cancel) {}

  ~Job() {
    RemoveContainers();
    if (image_held_) env_.images->Release(args_.docker_image);  // an exception ended Run
  }

  JobResult Run();

 private:
  std::string Url(const std::string& url) const {
    return env_.rewrite_url ? env_.rewrite_url(url) : url;
  }
  fs::path Host(const fs::path& p) const { return ToHostPath(p, env_.base_dir, env_.host_dir); }
  const char* Stage() const { return StageName(args_.is_scoring); }
  std::string HostDetails() const {
    return std::string(args_.is_scoring ? "scoring_hostname-" : "ingestion_hostname-") +
           env_.hostname;
  }

  Status Prepare();
  Status RunPrograms();
  Result<std::unique_ptr<ProgramRun>> CreateProgram(ProgramKind kind);
  void StreamProgram(ProgramRun& run);
  void WatchDetailedResults(std::atomic<bool>& stop);
  void WatchDisk(std::atomic<bool>& stop);
  void WatchUsage(std::atomic<bool>& stop);
  std::optional<fs::path> DetailedResultsFile() const;
  // How the programs ended, for the verdict and the notes on it.
  std::vector<ProgramEnd> Ends() const;
  Status UploadLogs();
  Status Finish();
  void RemoveContainers();
  // Removes the containers and (unless kept) the job folder, when called.
  std::function<void()> Cleanup();
  void KillContainers();
  // Wakes the loop that waits for the programs: one ended, started, or must
  // be stopped. Without it the loop would notice only at its next tick.
  void Wake() {
    std::lock_guard<std::mutex> lock(wake_mu_);
    ++wakes_;
    wake_cv_.notify_all();
  }
  // How the job's watcher threads wait between two looks: `d`, or until
  // `stop` is set and Wake() called.
  void SleepUnlessStopped(const std::atomic<bool>& stop, Clock::duration d) {
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_cv_.wait_for(lock, d, [&] { return stop.load(); });
  }
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
  std::vector<std::unique_ptr<ProgramRun>> programs_;
  std::string time_limit_error_;  // reported once the logs are up
  bool pull_failed_ = false;       // the job's reason is its image's pull
  // Set by the disk watcher when the programs wrote more than
  // MAX_OUTPUT_SIZE_GB; the main loop then stops them.
  std::atomic<bool> output_too_large_{false};
  std::atomic<std::uintmax_t> output_bytes_seen_{0};
  std::atomic<std::uintmax_t> prepared_bytes_{0};  // unpacked or copied before the programs ran
  bool image_held_ = false;            // Acquired from env_.images
  std::mutex containers_mu_;
  std::vector<std::string> containers_;
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::uint64_t wakes_ = 0;
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
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(containers_mu_);
    ids.swap(containers_);
  }
  fs::path folder = env_.keep_job_dir ? fs::path() : folder_.root();
  ContainerEngine& engine = engine_;
  std::shared_ptr<ImageBudget> images = image_held_ ? env_.images : nullptr;
  image_held_ = false;
  std::string image = args_.docker_image;
  return [&engine, ids, folder, images, image] {
    for (const auto& id : ids) {
      Status st = engine.Remove(id, true);
      if (!st.ok()) spdlog::warn("remove {}: {}", id, st.ToString());
    }
    if (!folder.empty()) JobFolder::Remove(folder);
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
  ImagePuller puller(engine_, args_.docker_image, env_.pull_policy, env_.progress, cancel_);
  const bool s = args_.is_scoring;
  BundleFetchContext context{storage_, cache_, cancel_, env_, folder_.root(), folder_.bundles(),
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

Result<std::unique_ptr<ProgramRun>> Job::CreateProgram(ProgramKind kind) {
  const bool ingestion = kind == ProgramKind::kIngestion;
  const fs::path dir = folder_.program(kind);
  auto run = std::make_unique<ProgramRun>();
  run->kind = kind;
  run->label = ProgramLabel(kind, args_.is_scoring);
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
      return InvalidInput("The " + run->label + " has no metadata.yaml (or metadata) file");
    }
    // A results-only submission: its files are the predictions.
    spdlog::info("{}: {} has no metadata, copying its files to the output", args_.id,
                 run->label);
    CW_RETURN_IF_ERROR(CopyTreeContents(dir, folder_.output()));
    prepared_bytes_ += TreeSize(folder_.output());
    return std::unique_ptr<ProgramRun>();
  }
  if (!meta.command) {
    if (ingestion || scoring_program) {
      return InvalidInput("The " + run->label + "'s " + meta.file.filename().string() +
                          " has no 'command'");
    }
    spdlog::info("{}: {} has no command; the ingestion program uses it", args_.id, run->label);
    return std::unique_ptr<ProgramRun>();
  }
  std::string command = ReplaceLegacyVariables(*meta.command, kind, args_.is_scoring,
                                               args_.ingestion_only_during_scoring);

  // Names taken when the same submission runs twice on this host, or when
  // its prediction's container is still being removed as its scoring job
  // starts: then a suffix (below).
  std::string network;
  if (!env_.container.network_disabled && env_.network_holders) {
    network = env_.network_holders->For(ProgramKindName(kind), args_.docker_image);
  }
  ProgramContainer container =
      ProgramContainerSpec(args_, kind, command, job_uid_, folder_, env_, network);
  for (const fs::path& p : container.mount_sources) fs::create_directories(p, ec);
  ContainerSpec& spec = container.spec;
  const std::string python_name = spec.name;

  spdlog::info("{}: {} runs `{}` in {}", args_.id, run->label, command, spec.image);
  auto id = engine_.Create(spec);
  for (int retry = 0; retry < 3 && !id.ok() && id.status().code() == Code::kAlreadyExists;
       ++retry) {
    std::string taken = spec.name;
    spec.name = python_name + "_" + RandomHex(3);
    spdlog::info("{}: container name {} is another container's; naming the {}'s {}", args_.id,
                 taken, run->label, spec.name);
    id = engine_.Create(spec);
  }
  if (!id.ok()) {
    // The engine's daemon does not see the job folder where the worker says
    // it is: the classic wrong mount of a worker that runs in a container.
    if (id.status().message().find("bind source path does not exist") != std::string::npos) {
      return Status(Code::kUnavailable,
                    "The container engine cannot see this job's folder at " + Host(dir).string() +
                        " (HOST_DIRECTORY=" + env_.host_dir.string() +
                        "): the worker's admin must mount HOST_DIRECTORY at the same path in "
                        "the worker's container (or at /codabench), or set "
                        "WORKER_BASE_DIRECTORY to where the worker sees it (codabench-worker "
                        "doctor checks this)");
    }
    return id.status().Prefixed("The " + run->label + "'s container could not be created");
  }
  run->container_id = *id;
  {
    std::lock_guard<std::mutex> lock(containers_mu_);
    containers_.push_back(*id);
  }
  const char* name = ProgramKindName(kind);
  run->out = std::make_unique<LogFile>(folder_.logs() / (std::string(name) + ".stdout"),
                                       env_.max_log_bytes);
  run->err = std::make_unique<LogFile>(folder_.logs() / (std::string(name) + ".stderr"),
                                       env_.max_log_bytes);
  if (!run->out->ok() || !run->err->ok()) return IoError("cannot create log files in " +
                                                         folder_.logs().string());
  run->stdout_url = ingestion ? args_.ingestion_stdout_url : args_.stdout_url;
  run->stderr_url = ingestion ? args_.ingestion_stderr_url : args_.stderr_url;
  return run;
}

void Job::StreamProgram(ProgramRun& run) {
  run.started = Clock::now();
  auto on_output = [&run, this](StreamKind stream, std::string_view data) {
    const bool err = stream == StreamKind::kStderr;
    (err ? run.err : run.out)->Write(data);
    reporter_.Log(run.kind, err ? LogStream::kStderr : LogStream::kStdout, data);
  };
  auto on_started = [&run, this] {
    run.running_since = Clock::now();
    run.running = true;
    Wake();
  };
  Status streamed = engine_.StartAndStream(run.container_id, on_output, on_started);
  if (!streamed.ok()) {
    run.error = streamed.Prefixed("The " + run.label + " could not run");
    // runc's words for a limit above the engine's own: the admin's to fix.
    if (streamed.message().find("error setting rlimit type 7") != std::string::npos) {
      run.error = Status(Code::kUnavailable,
                         "The " + run.label + " could not start: this worker's CONTAINER_NOFILE_LIMIT (" +
                             std::to_string(env_.container.nofile_limit) +
                             ") is above its container engine's own open-file limit; the worker's "
                             "admin must lower it");
    }
  }
  auto code = engine_.Wait(run.container_id, std::chrono::seconds(60));
  if (code.ok()) {
    run.outcome.exit_code = *code;
    if (*code != 0 && !cancel_.cancelled()) {
      // Only the engine knows whether the kernel's OOM killer stopped it.
      auto state = engine_.Inspect(run.container_id, false);
      if (state.ok()) {
        run.oom_killed = state->oom_killed;
      } else {
        spdlog::warn("{}: cannot inspect the {}'s container: {}", args_.id, run.label,
                     state.status().ToString());
      }
    }
  } else if (run.error.ok()) {
    run.error = code.status().Prefixed("The " + run.label + " did not report an exit code");
  }
  run.outcome.elapsed_seconds =
      SecondsSince(run.running ? run.running_since : run.started);
  run.out->Close();
  run.err->Close();
  run.done = true;
  Wake();
}

std::optional<fs::path> Job::DetailedResultsFile() const {
  // symlink_status: a link the program left is never taken for the file.
  std::error_code ec;
  fs::path preferred = folder_.output() / "detailed_results.html";
  if (fs::is_regular_file(fs::symlink_status(preferred, ec))) return preferred;
  std::optional<fs::path> first;
  for (const auto& entry : fs::directory_iterator(folder_.output(), ec)) {
    if (fs::is_regular_file(entry.symlink_status(ec)) && entry.path().extension() == ".html" &&
        (!first || entry.path() < *first)) {
      first = entry.path();
    }
  }
  return first;
}

void Job::WatchDetailedResults(std::atomic<bool>& stop) {
  // The program may still be writing, or swap in a link or a FIFO between two
  // looks: the file is opened without following links and copied to a
  // snapshot outside the output folder, and the snapshot is what is sent.
  // Looks are cheap (an lstat), so they are frequent and a change reaches
  // the site within about a second; uploads are at most one a second, and
  // never of an unchanged file.
  const fs::path snapshot = folder_.root() / "detailed_results.snapshot.html";
  using Seen = std::pair<std::int64_t, std::int64_t>;  // mtime ns, size
  std::optional<Seen> last;
  std::optional<Clock::time_point> last_upload;
  std::optional<fs::path> file;
  Clock::time_point last_search = Clock::now() - std::chrono::hours(1);
  bool noted = false;
  auto note = [&](const std::string& why) {
    if (!noted) reporter_.LiveError("Detailed results not sent: " + why);
    noted = true;
  };
  auto look = [&](bool final) {
    // detailed_results.html is looked for every time; without it, finding
    // "the first *.html" lists the output folder, which may be big: not more
    // than every 2 s.
    const fs::path preferred = folder_.output() / "detailed_results.html";
    std::error_code ec;
    if (fs::is_regular_file(fs::symlink_status(preferred, ec))) {
      file = preferred;
    } else if (!file || !fs::is_regular_file(fs::symlink_status(*file, ec))) {
      if (!final && Clock::now() - last_search < std::chrono::seconds(2)) return;
      last_search = Clock::now();
      file = DetailedResultsFile();
      if (!file) return;
    }
    struct stat st;
    if (::lstat(file->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    Seen seen{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
              static_cast<std::int64_t>(st.st_size)};
    if (last && *last == seen) return;
    if (!final && last_upload && Clock::now() - *last_upload < env_.detailed_results_min_gap) {
      return;  // changed again too soon: a later look sends it
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxDetailedResultsBytes) {
      note(file->filename().string() + " is " + FormatGb(static_cast<std::uint64_t>(st.st_size)) +
           " GB, more than the " + std::to_string(kMaxDetailedResultsBytes >> 20) +
           " MiB allowed");
      last = seen;
      return;
    }
    auto fd = OpenRegularFile(*file);
    if (!fd.ok()) {
      note(fd.status().message());
      return;
    }
    Status copied = CopyFdToFile(fd->get(), *file, snapshot, kMaxDetailedResultsBytes);
    if (!copied.ok()) {
      spdlog::warn("{}: cannot snapshot the detailed results: {}", args_.id, copied.ToString());
      return;
    }
    last = seen;
    last_upload = Clock::now();
    Status put = storage_.Put(Url(args_.detailed_results_url), snapshot, "text/html");
    if (put.ok()) {
      reporter_.DetailedResultsUpdated();
    } else {
      spdlog::warn("{}: detailed results upload failed: {}", args_.id, put.ToString());
    }
  };
  while (!stop) {
    look(false);
    SleepUnlessStopped(stop, env_.detailed_results_interval);
  }
  look(true);  // always the final version
}

Status Job::RunPrograms() {
  auto t0 = Clock::now();
  const LogFields fields = CurrentLogFields();  // the job's, for its threads' lines
  // Both containers are created before either starts, so a bad image or spec
  // fails the job before any time is counted; at the same time, as each
  // create is an engine round trip (about 35 ms on an idle 2-CPU machine).
  Result<std::unique_ptr<ProgramRun>> ingestion = std::unique_ptr<ProgramRun>();
  std::thread ingestion_creator([this, &ingestion, fields] {
    ScopedLogFields scoped(fields);
    try {
      ingestion = CreateProgram(ProgramKind::kIngestion);
    } catch (const std::exception& e) {
      ingestion = Internal(std::string("The worker hit an internal error while creating the "
                                       "ingestion program's container: ") + e.what());
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
  CW_RETURN_IF_ERROR(CheckCancel());

  const auto deadline = Clock::now() + std::chrono::seconds(args_.execution_time_limit);
  // An exception must not leave a thread of ours: it would end the process.
  for (auto& run : programs_) {
    run->thread = std::thread([this, r = run.get(), fields] {
      ScopedLogFields scoped(fields);
      try {
        StreamProgram(*r);
      } catch (const std::exception& e) {
        r->error = Internal("The worker hit an internal error while running the " + r->label +
                            ": " + e.what());
        r->done = true;
        Wake();
      }
    });
  }
  std::atomic<bool> stop_watch{false};
  auto guarded = [this, fields](const char* what, auto fn) {
    return [this, what, fn, fields] {
      ScopedLogFields scoped(fields);
      try {
        fn();
      } catch (const std::exception& e) {
        spdlog::error("{}: the {} stopped: {}", args_.id, what, e.what());
      }
    };
  };
  std::thread watcher;
  if (!args_.detailed_results_url.empty()) {
    watcher = std::thread(guarded("detailed results watcher",
                                  [this, &stop_watch] { WatchDetailedResults(stop_watch); }));
  }
  std::thread usage_watcher;
  if (!programs_.empty()) {
    usage_watcher =
        std::thread(guarded("usage sampler", [this, &stop_watch] { WatchUsage(stop_watch); }));
  }
  std::thread disk_watcher;
  if (env_.limits.max_output_bytes > 0 && !programs_.empty()) {
    disk_watcher =
        std::thread(guarded("output size watcher", [this, &stop_watch] { WatchDisk(stop_watch); }));
  }

  bool timed_out = false;
  bool too_large = false;
  bool container_start_recorded = false;
  std::uint64_t seen_wakes = 0;
  std::unique_ptr<GpuWindow> gpu_window;
  while (true) {
    bool all_done = true;
    bool all_running = true;
    for (auto& run : programs_) {
      all_done = all_done && run->done;
      all_running = all_running && (run->running || run->done);
    }
    if (all_running && !container_start_recorded) {
      result_.timings.container_start_s = SecondsSince(t0);
      container_start_recorded = true;
      // From here, not from the creation: an idle GPU while containers start
      // is not the programs' doing and would lower their mean.
      if (env_.gpu_usage && !programs_.empty()) gpu_window = env_.gpu_usage->Begin();
    }
    if (all_done) break;
    if (cancel_.cancelled()) {
      KillContainers();
      break;
    }
    if (output_too_large_) {
      too_large = true;
      KillContainers();
      break;
    }
    if (Clock::now() >= deadline) {
      timed_out = true;
      KillContainers();
      break;
    }
    // The tick is for a cancel and the deadline; the programs wake it.
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return wakes_ != seen_wakes; });
    seen_wakes = wakes_;
  }
  for (auto& run : programs_) run->thread.join();
  stop_watch = true;
  Wake();
  if (watcher.joinable()) watcher.join();
  if (disk_watcher.joinable()) disk_watcher.join();
  if (usage_watcher.joinable()) usage_watcher.join();
  result_.timings.programs_s = SecondsSince(t0) - result_.timings.container_start_s;
  if (gpu_window) result_.gpu = gpu_window->Finish();

  for (auto& run : programs_) {
    if (run->peak_memory >= 0) run->outcome.peak_memory_bytes = run->peak_memory.load();
    if (run->cpu_seconds >= 0) run->outcome.cpu_seconds = run->cpu_seconds.load();
    (run->kind == ProgramKind::kIngestion ? result_.ingestion : result_.program) = run->outcome;
    spdlog::info("{}: the {} ran {:.1f} s: {}{}", args_.id, run->label,
                 run->outcome.elapsed_seconds.value_or(0), DescribeUsage(run->outcome),
                 gpu_window ? DescribeSlotGpus(*env_.gpu_usage, result_.gpu) : std::string());
  }
  CW_RETURN_IF_ERROR(CheckCancel());
  if (timed_out) {
    std::string message = TimeLimitMessage(args_.execution_time_limit);
    // Sent after the logs are uploaded: the site appends it to the stderr
    // log, which the upload would otherwise overwrite.
    time_limit_error_ = message;
    reporter_.LiveError(message);
    return Timeout(message);
  }
  if (too_large) {
    std::string message =
        OutputTooLargeMessage(env_.limits.max_output_bytes, output_bytes_seen_.load());
    reporter_.LiveError(message);
    return InvalidInput(message);
  }
  ExitVerdict verdict = JudgeProgramEnds(Ends(), args_.is_scoring, env_.container.memory_bytes,
                                         folder_.input() / "res" / "metadata");
  for (const std::string& why : verdict.tolerated) {
    spdlog::info("{}: {} (the job goes on, as on Codabench's own worker)", args_.id, why);
    reporter_.LiveError(why + " (see its stderr log); the job goes on with what it wrote");
  }
  return verdict.status;
}

std::vector<ProgramEnd> Job::Ends() const {
  std::vector<ProgramEnd> ends;
  for (const auto& run : programs_) {
    ends.push_back({run->kind, run->label, run->outcome, run->oom_killed, run->error});
  }
  return ends;
}

void Job::WatchUsage(std::atomic<bool>& stop) {
  auto raise = [](auto& atomic, auto value) {
    auto seen = atomic.load();
    while (value > seen && !atomic.compare_exchange_weak(seen, value)) {
    }
  };
  while (!stop) {
    // Until every running program has a first sample, look again soon: a
    // short program would otherwise end unmeasured.
    bool unsampled = false;
    for (auto& run : programs_) {
      if (run->done) continue;
      if (!run->running) {
        unsampled = true;
        continue;
      }
      auto stats = engine_.Stats(run->container_id);
      if (!stats.ok()) continue;  // it may just have ended
      raise(run->peak_memory, std::max(stats->memory_bytes, stats->memory_peak_bytes));
      raise(run->cpu_seconds, stats->cpu_seconds);
      unsampled = unsampled || run->peak_memory < 0;
    }
    SleepUnlessStopped(stop, unsampled ? std::min(env_.usage_interval, std::chrono::milliseconds(50))
                                       : env_.usage_interval);
  }
}

void Job::WatchDisk(std::atomic<bool>& stop) {
  // Every folder a program can write. What was unpacked or copied into them
  // before the start is not the programs' doing.
  const std::vector<fs::path> dirs = folder_.Writable();
  auto measure = [&] {
    std::uintmax_t bytes = 0;
    for (const auto& d : dirs) bytes += MeasureTree(d).bytes;
    return bytes;
  };
  const std::uintmax_t baseline = prepared_bytes_;
  const std::uintmax_t limit = env_.limits.max_output_bytes;
  auto last_layer_check = Clock::now() - std::chrono::hours(1);
  std::uintmax_t layers = 0;
  while (!stop) {
    auto t0 = Clock::now();
    std::uintmax_t written = measure();
    written = written > baseline ? written - baseline : 0;
    // A program may also write inside its container (/tmp, its home): that
    // lands in the engine's storage. The engine walks the container's layer
    // to size it, so this is asked less often.
    if (Clock::now() - last_layer_check >= 5 * env_.limits.output_check_interval) {
      last_layer_check = Clock::now();
      layers = 0;
      std::vector<std::string> ids;
      {
        std::lock_guard<std::mutex> lock(containers_mu_);
        ids = containers_;
      }
      for (const auto& id : ids) {
        auto state = engine_.Inspect(id, true);
        if (state.ok() && state->writable_bytes > 0) {
          layers += static_cast<std::uintmax_t>(state->writable_bytes);
        }
      }
    }
    output_bytes_seen_ = written + layers;
    if (written + layers > limit) {
      spdlog::warn("{}: the programs wrote {} bytes ({} in their containers), more than "
                   "MAX_OUTPUT_SIZE_GB; stopping them",
                   args_.id, written + layers, layers);
      output_too_large_ = true;
      Wake();
      return;
    }
    // A huge tree makes each walk slow: walk at most a fifth of the time.
    auto walk = Clock::now() - t0;
    SleepUnlessStopped(stop, std::max<Clock::duration>(env_.limits.output_check_interval, 4 * walk));
  }
}

Status Job::UploadLogs() {
  Status first_error;
  for (auto& run : programs_) {
    for (auto [file, url] : {std::pair{run->out.get(), run->stdout_url},
                             std::pair{run->err.get(), run->stderr_url}}) {
      if (url.empty()) continue;
      // The site signs log URLs for application/zip (its default), and S3
      // refuses a PUT whose Content-Type differs from the signed one.
      Status st = storage_.Put(Url(url), file->path(), "application/zip");
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
  CW_RETURN_IF_ERROR(WriteOutputMetadata(folder_.output(), program, result_.ingestion, result_.gpu));
  auto t0 = Clock::now();
  if (args_.is_scoring) {
    auto scores = ReadScores(folder_.output());
    if (!scores.ok()) {
      std::string earlier = EarlierExitNote(Ends(), folder_.input() / "res" / "metadata");
      if (earlier.empty()) return scores.status();
      return Status(scores.status().code(), scores.status().message() + "; " + earlier);
    }
    result_.scores = std::move(*scores);
    Status sent = reporter_.ReportScores(result_.scores);
    if (!sent.ok()) return sent.Prefixed("Could not send the scores to the site");
  }
  fs::path zip = folder_.root() / "output.zip";
  CW_RETURN_IF_ERROR(CreateZip(folder_.output(), zip, [this] { return cancel_.cancelled(); }));
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

void Job::KillContainers() {
  std::lock_guard<std::mutex> lock(containers_mu_);
  for (const auto& id : containers_) {
    Status st = engine_.Kill(id);
    if (!st.ok()) spdlog::warn("kill {}: {}", id, st.ToString());
  }
}

void Job::RemoveContainers() {
  std::lock_guard<std::mutex> lock(containers_mu_);
  for (const auto& id : containers_) {
    Status st = engine_.Remove(id, true);
    if (!st.ok()) spdlog::warn("remove {}: {}", id, st.ToString());
  }
  containers_.clear();
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
