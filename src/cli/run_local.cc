#include "cli/run_local.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <set>
#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "archive/zip.h"
#include "common/serial_executor.h"
#include "bundle/competition.h"
#include "config/config.h"
#include "engine/docker_engine.h"
#include "gpu/container_options.h"
#include "job/network_holders.h"
#include "report/progress.h"
#include "report/terminal_reporter.h"
#include "storage/bundle_cache.h"
#include "storage/local_storage.h"
#include "worker/slot_environments.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted = true; }

std::string FileUrl(const fs::path& p) { return "file://" + fs::absolute(p).string(); }

std::string Timestamp() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
  return buf;
}

// A bundle entry as a zip file: folders are zipped into `zips`.
Result<std::string> EntryZip(const BundleEntry& entry, const std::string& what,
                             const fs::path& zips) {
  CW_RETURN_IF_ERROR(RequireLocal(entry, what));
  switch (entry.kind) {
    case BundleEntry::Kind::kNone:
      return std::string();
    case BundleEntry::Kind::kZip:
      return FileUrl(entry.path);
    case BundleEntry::Kind::kFolder: {
      fs::path zip = zips / (what + ".zip");
      CW_RETURN_IF_ERROR(CreateZip(entry.path, zip).Prefixed("zipping " + entry.path.string()));
      return FileUrl(zip);
    }
    case BundleEntry::Kind::kServerKey:
      break;
  }
  return Internal("unexpected bundle entry kind");
}

Result<std::string> SubmissionZip(const fs::path& submission, const fs::path& zips) {
  std::error_code ec;
  if (fs::is_directory(submission, ec)) {
    fs::path zip = zips / "submission.zip";
    CW_RETURN_IF_ERROR(CreateZip(submission, zip).Prefixed("zipping the submission"));
    return FileUrl(zip);
  }
  if (!fs::is_regular_file(submission, ec)) {
    return NotFound("submission " + submission.string() + " is neither a zip file nor a folder");
  }
  if (!LooksLikeZip(submission)) {
    return InvalidInput("submission " + submission.string() + " is not a zip file");
  }
  return FileUrl(submission);
}

// The task's programs and data, and the submission, as file:// URLs of zips.
struct LocalZips {
  std::string scoring, ingestion, input, reference, submission;
};

Result<LocalZips> ZipTask(const TaskSpec& t, const std::string& phase_name,
                          const fs::path& submission, const fs::path& zips) {
  LocalZips z;
  CW_ASSIGN_OR_RETURN(z.scoring, EntryZip(t.scoring_program, "scoring_program", zips));
  CW_ASSIGN_OR_RETURN(z.ingestion, EntryZip(t.ingestion_program, "ingestion_program", zips));
  CW_ASSIGN_OR_RETURN(z.input, EntryZip(t.input_data, "input_data", zips));
  CW_ASSIGN_OR_RETURN(z.reference, EntryZip(t.reference_data, "reference_data", zips));
  if (z.scoring.empty()) {
    return InvalidInput("task '" + t.name + "' of phase '" + phase_name +
                        "' has no scoring_program; nothing could score the submission");
  }
  CW_ASSIGN_OR_RETURN(z.submission, SubmissionZip(submission, zips));
  return z;
}

struct StageFiles {
  fs::path dir;
  std::string Log(const char* name) const { return FileUrl(dir / "logs" / name); }
};

RunArgs BaseArgs(const std::string& image, int time_limit) {
  RunArgs a;
  a.id = 1;
  a.user_pk = 1;
  a.submissions_api_url = "http://localhost/api";
  a.secret = "local";
  a.docker_image = image;
  a.execution_time_limit = time_limit;
  return a;
}

RunArgs PredictionArgs(const std::string& image, int time_limit, const LocalZips& z,
                       const StageFiles& pred) {
  RunArgs p = BaseArgs(image, time_limit);
  p.is_scoring = false;
  p.program_data = z.submission;
  p.ingestion_program = z.ingestion;
  p.input_data = z.input;
  p.prediction_result = FileUrl(pred.dir / "output.zip");
  p.stdout_url = pred.Log("stdout.txt");
  p.stderr_url = pred.Log("stderr.txt");
  p.ingestion_stdout_url = pred.Log("ingestion_stdout.txt");
  p.ingestion_stderr_url = pred.Log("ingestion_stderr.txt");
  return p;
}

RunArgs ScoringArgs(const std::string& image, int time_limit, const LocalZips& z,
                    const StageFiles& pred, const StageFiles& score) {
  RunArgs s = BaseArgs(image, time_limit);
  s.is_scoring = true;
  s.program_data = z.scoring;
  s.input_data = z.input;
  s.reference_data = z.reference;
  s.prediction_result = FileUrl(pred.dir / "output.zip");
  s.scoring_result = FileUrl(score.dir / "output.zip");
  s.detailed_results_url = FileUrl(score.dir / "detailed_results.html");
  s.stdout_url = score.Log("stdout.txt");
  s.stderr_url = score.Log("stderr.txt");
  return s;
}

// Pulls and downloads: a bar on stderr when it is a terminal, else a log
// line every few seconds (a file or a CI log has no use for \r).
ProgressDisplay TransferDisplay(bool tty) {
  ProgressDisplay d;
  if (tty) {
    d.style = ProgressStyle::kBar;
    d.write = [](const std::string& text) { BarLine::Draw(text); };
    d.columns = [] { return TerminalColumns(STDERR_FILENO); };
    // Someone is watching: half a second of silence is enough.
    d.start_after = std::chrono::milliseconds(500);
  } else {
    d.write = [](const std::string& line) { spdlog::info("{}", line); };
  }
  // For tests only (tests/e2e/test_progress.py): show every transfer at once
  // and redraw or log at most every N ms, so small local transfers show.
  if (const char* ms = std::getenv("CW_TEST_PROGRESS_INTERVAL_MS"); ms && *ms) {
    std::chrono::milliseconds every(std::strtoll(ms, nullptr, 10));
    d.start_after = std::chrono::milliseconds(0);
    d.line_every = every;
    d.redraw_every = every;
  }
  return d;
}

void PrintScores(const Competition& competition, const nlohmann::json& scores) {
  std::printf("\nScores\n");
  size_t width = 6;
  for (const auto& c : competition.columns) width = std::max(width, c.title.size());
  for (auto& [key, value] : scores.items()) width = std::max(width, key.size());
  std::set<std::string> shown;
  for (const auto& c : competition.columns) {
    shown.insert(c.key);
    std::string title = c.title.empty() ? c.key : c.title;
    if (scores.contains(c.key)) {
      int digits = c.numeric_format >= 0 ? c.numeric_format : 4;
      std::printf("  %-*s  %.*f  (%s, %s)\n", static_cast<int>(width), title.c_str(), digits,
                  scores[c.key].get<double>(), c.key.c_str(),
                  c.sorting == "asc" ? "lower is better" : "higher is better");
    } else {
      std::printf("  %-*s  -       (%s: not in the scoring program's output)\n",
                  static_cast<int>(width), title.c_str(), c.key.c_str());
    }
  }
  for (auto& [key, value] : scores.items()) {
    if (shown.count(key)) continue;
    std::printf("  %-*s  %.4f  (not a leaderboard column)\n", static_cast<int>(width),
                key.c_str(), value.get<double>());
  }
  std::fflush(stdout);
}

void PrintTimings(const char* stage, const JobTimings& t) {
  spdlog::info("{} timings: fetch {:.2f}s, unzip {:.2f}s, image {:.2f}s, container start "
               "{:.2f}s, programs {:.2f}s, upload {:.2f}s, total {:.2f}s",
               stage, t.fetch_s, t.unzip_s, t.pull_s, t.container_start_s, t.programs_s,
               t.upload_s, t.total_s);
}

int Fail(const std::string& reason) {
  std::fprintf(stderr, "error: %s\n", reason.c_str());
  return 1;
}

// Unpacks a job's output zip into DIR/output so a person can look at it.
void UnpackOutput(const StageFiles& stage) {
  fs::path zip = stage.dir / "output.zip";
  std::error_code ec;
  if (!fs::exists(zip, ec)) return;
  auto unpacked = ExtractZip(zip, stage.dir / "output");
  if (!unpacked.ok()) spdlog::warn("could not unpack {}: {}", zip.string(), unpacked.status().ToString());
}

}  // namespace

int RunLocal(const RunLocalOptions& o) {
  auto config = LoadConfig(std::nullopt);
  if (!config.ok()) return Fail(config.status().message());

  fs::path out = o.out.empty() ? fs::path("codabench-run-local") / Timestamp() : o.out;
  out = fs::absolute(out);
  fs::path work = out / "work";
  std::error_code ec;
  fs::create_directories(work / "zips", ec);
  if (ec) return Fail("cannot create " + (work / "zips").string() + ": " + ec.message());

  auto competition = LoadCompetition(fs::absolute(o.bundle), work / "bundle");
  if (!competition.ok()) return Fail(competition.status().message());
  auto phase = SelectPhase(*competition, o.phase);
  if (!phase.ok()) return Fail(phase.status().message());
  auto task = SelectTask(**phase, o.task);
  if (!task.ok()) return Fail(task.status().message());
  const TaskSpec& t = **task;
  const std::string image = o.image.empty() ? competition->docker_image : o.image;

  auto zips = ZipTask(t, (*phase)->name, fs::absolute(o.submission), work / "zips");
  if (!zips.ok()) return Fail(zips.status().message());

  std::string socket = o.container_socket.empty() ? config->container_socket : o.container_socket;
  DockerEngine engine(socket);
  auto version = engine.Version();
  if (!version.ok()) return Fail(version.status().message());

  std::fprintf(stderr, "==> %s, phase '%s', task '%s', image %s, engine %s\n",
               competition->title.empty() ? o.bundle.c_str() : competition->title.c_str(),
               (*phase)->name.c_str(), t.name.c_str(), image.c_str(), version->c_str());
  std::fprintf(stderr, "==> results go to %s\n", out.c_str());

  LocalStorage storage;
  BundleCache cache(work / "cache", CacheBytesFromGb(config->max_cache_dir_size_gb));
  JobEnvironment env = BaseJobEnvironment(*config, work, work);
  auto container = ContainerOptionsFromConfig(*config);
  if (!container.ok()) return Fail(container.status().message());
  env.container = *container;
  env.pull_policy = o.pull;
  env.keep_job_dir = o.keep;
  env.labels["org.codabench.run-local"] = "1";
  if (Result<EngineInfo> info = engine.Info(); info.ok()) {
    env.unenforced_limits = UnenforcedLimits(*info);
    env.usage_figures = StatsArePerContainer(*info);
  }
  PrepareEngine(env, engine);
  if (Status kept = CheckGpuRequestsKept(env.sandbox_image, env.container.device_requests,
                                         env.labels, engine);
      !kept.ok()) {
    return Fail(kept.message());
  }
  env.container.network = EnsureProgramNetwork(env.container, "run-local", 0, engine);
  const bool tty = isatty(STDERR_FILENO);
  if (tty) {
    // Log lines (a pull runs beside the downloads and their unpacking) clear
    // the progress bar first instead of landing in it.
    for (auto& sink : spdlog::default_logger()->sinks()) sink = BarAwareSink(sink);
  }
  env.progress = TransferDisplay(tty);
  JobRunner runner(env, storage, cache, engine);

  CancelToken cancel;
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  // Stopped before `cancel` goes (declared after it).
  SerialExecutor interrupt_watch("interrupt watch");
  interrupt_watch.Repeat(std::chrono::milliseconds(100), [&cancel] {
    if (g_interrupted) cancel.Cancel("interrupted");
  });

  // Prediction: the submission (with the ingestion program when there is one).
  StageFiles pred{out / "prediction"};
  RunArgs p = PredictionArgs(image, (*phase)->execution_time_limit, *zips, pred);
  JobResult pr;
  {
    TerminalReporter reporter("prediction", stdout, stderr, o.color);
    pr = runner.Run(p, reporter, cancel);
  }
  PrintTimings("prediction", pr.timings);
  UnpackOutput(pred);
  if (!pr.ok()) return Fail("prediction failed: " + pr.failure.message());

  // Scoring: the scoring program on the prediction's output.
  StageFiles score{out / "scoring"};
  RunArgs s = ScoringArgs(image, (*phase)->execution_time_limit, *zips, pred, score);
  JobResult sr;
  {
    TerminalReporter reporter("scoring", stdout, stderr, o.color);
    sr = runner.Run(s, reporter, cancel);
  }
  PrintTimings("scoring", sr.timings);
  UnpackOutput(score);
  if (!sr.ok()) return Fail("scoring failed: " + sr.failure.message());

  PrintScores(*competition, sr.scores);
  if (!o.keep) fs::remove_all(work, ec);
  return 0;
}

}  // namespace cw
