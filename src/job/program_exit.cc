#include "job/program_exit.h"

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "common/safe_file.h"
#include "common/units.h"

namespace cw {

std::string FormatMiB(long long bytes) {
  if (bytes >= (1LL << 30) && bytes % (1LL << 30) == 0) {
    return std::to_string(bytes >> 30) + " GiB";
  }
  return std::to_string(bytes >> 20) + " MiB";
}

std::string DescribeUsage(const ProgramOutcome& o) {
  std::string out;
  if (o.peak_memory_bytes) out += "peak memory " + FormatMiB(*o.peak_memory_bytes);
  if (o.cpu_seconds) {
    char cpu[32];
    std::snprintf(cpu, sizeof cpu, "CPU %.1f s", *o.cpu_seconds);
    out += (out.empty() ? "" : ", ") + std::string(cpu);
  }
  return out.empty() ? "no usage figures from the engine" : out;
}

std::string DescribeSlotGpus(const GpuUsageMeter& meter, const GpuUsage& usage) {
  std::string figures = DescribeGpuUsage(usage);
  return "; " + meter.Describe() + " while the programs ran: " +
         (figures.empty() ? "no figures (no sample landed while they ran)" : figures);
}

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : std::string();
}

std::string SubmissionFailedDetails(std::string reason) {
  while (!reason.empty() && (reason.back() == '.' || std::isspace(static_cast<unsigned char>(reason.back())))) {
    reason.pop_back();
  }
  if (reason.empty()) return "Submission failed. See logs for more details.";
  return "Submission failed: " + reason + ". See logs for more details.";
}

bool LikelyOutOfMemory(const ProgramEnd& end, long long memory_limit_bytes) {
  return !end.oom_killed && end.oom_unknown && memory_limit_bytes > 0 &&
         end.outcome.exit_code.value_or(-1) == 128 + SIGKILL;
}

Status ProgramExitStatus(const ProgramEnd& end, long long memory_limit_bytes) {
  const int code = end.outcome.exit_code.value_or(-1);
  if (end.oom_killed) {
    return InvalidInput("The " + end.label + " ran out of memory (limit " +
                        (memory_limit_bytes > 0 ? FormatMiB(memory_limit_bytes)
                                                : std::string("the host's memory")) +
                        ") and was stopped (exit code " + std::to_string(code) + ")");
  }
  std::string signal = code > 128 ? SignalName(code - 128) : std::string();
  if (!signal.empty()) {
    std::string why = "The " + end.label + " was killed by " + signal + " (exit code " +
                      std::to_string(code) + ")";
    if (LikelyOutOfMemory(end, memory_limit_bytes)) {
      why += ", most likely at its memory limit (" + FormatMiB(memory_limit_bytes) +
             "): this worker's container engine does not say whether it ran out of memory";
    }
    return InvalidInput(why);
  }
  // No "see its stderr log": the Failed status's details end with "See logs
  // for more details.", and the live note of the prediction step says it.
  return InvalidInput("The " + end.label + " exited with code " + std::to_string(code));
}

std::string EarlierExitNote(const std::vector<ProgramEnd>& ends,
                            const std::filesystem::path& prediction_metadata) {
  std::vector<std::string> notes;
  for (const ProgramEnd& end : ends) {
    if (end.kind == ProgramKind::kIngestion && end.outcome.exit_code &&
        *end.outcome.exit_code != 0) {
      notes.push_back("the ingestion program exited with code " +
                      std::to_string(*end.outcome.exit_code));
    }
  }
  auto text = ReadRegularFile(prediction_metadata, 64 * 1024);
  if (text.ok()) {
    try {
      YAML::Node meta = YAML::Load(*text);
      for (auto [key, who] : {std::pair{"exitCode", "the submission"},
                              std::pair{"ingestionExitCode", "the ingestion program"}}) {
        if (!meta.IsMap() || !meta[key] || !meta[key].IsScalar()) continue;
        int code = 0;
        if (YAML::convert<int>::decode(meta[key], code) && code != 0) {
          notes.push_back(std::string(who) + " exited with code " + std::to_string(code) +
                          " in the prediction step");
        }
      }
    } catch (const std::exception&) {
      // Not the worker's own metadata: nothing to add.
    }
  }
  std::string out;
  for (const auto& n : notes) out += (out.empty() ? "" : "; ") + n;
  return out;
}

ExitVerdict JudgeProgramEnds(const std::vector<ProgramEnd>& ends, bool is_scoring,
                             long long memory_limit_bytes,
                             const std::filesystem::path& prediction_metadata) {
  ExitVerdict verdict;
  for (const ProgramEnd& end : ends) {
    if (!end.error.ok()) {
      verdict.status = end.error;
      return verdict;
    }
  }
  // Out of memory ends the job in either step: what the program left is cut
  // short, and only this message says why.
  for (const ProgramEnd& end : ends) {
    if (end.oom_killed || LikelyOutOfMemory(end, memory_limit_bytes)) {
      verdict.status = ProgramExitStatus(end, memory_limit_bytes);
      return verdict;
    }
  }
  // As the Python worker does: in the prediction step an exit code does not
  // fail the job (a results-only submission to a CodaLab 1.5 competition
  // makes its ingestion program exit 1, and the scoring program scores the
  // copied files); in the scoring step the scoring program's does.
  for (const ProgramEnd& end : ends) {
    if (!end.outcome.exit_code || *end.outcome.exit_code == 0) continue;
    Status why = ProgramExitStatus(end, memory_limit_bytes);
    if (is_scoring && end.kind == ProgramKind::kProgram) {
      std::string earlier = EarlierExitNote(ends, prediction_metadata);
      verdict.status = earlier.empty() ? why : Status(why.code(), why.message() + "; " + earlier);
      return verdict;
    }
    verdict.tolerated.push_back(why.message());
  }
  return verdict;
}

std::string TimeLimitMessage(int limit_seconds) {
  return "Execution Time Limit exceeded. Limit was " + std::to_string(limit_seconds) + " seconds";
}

std::string OutputTooLargeMessage(std::uint64_t limit_bytes, std::uint64_t seen_bytes) {
  const std::string limit = FormatGb(limit_bytes);
  return "Job output larger than " + limit + " GB (MAX_OUTPUT_SIZE_GB=" + limit +
         "): the programs wrote " + FormatGb(seen_bytes) + " GB and were stopped";
}

}  // namespace cw
