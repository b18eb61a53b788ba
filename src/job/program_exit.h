// How a job's programs' ends become the job's verdict, and the texts that
// say so: the exit-code rule of each step (as the Python worker judges
// them), what a program used, and the shapes of the Failed status's
// details. Pure functions (EarlierExitNote reads the prediction's
// `metadata` file), callable from any thread.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "job/gpu_usage.h"
#include "job/program_files.h"
#include "report/reporter.h"

namespace cw {

// "512 MiB", or "2 GiB" for a whole number of GiB.
std::string FormatMiB(long long bytes);

// "peak memory 212 MiB, CPU 3.4 s" (or what of it the engine told).
std::string DescribeUsage(const ProgramOutcome& o);

// "; GPUs 0, 1 while the programs ran: peak memory 3276 MiB, utilisation 87%
// on average". The programs share the slot's GPUs, so the figures are the
// slot's over their whole run, the same on each program's line.
std::string DescribeSlotGpus(const GpuUsageMeter& meter, const GpuUsage& usage);

// "SIGKILL" for 9; empty when `sig` is no signal this system knows.
std::string SignalName(int sig);

// The status_details of a Failed status, in the shapes of the Python
// worker's texts so that admins and participants can compare the two:
// "Submission failed: <reason>. See logs for more details." (its
// SubmissionException), with our reason inside.
std::string SubmissionFailedDetails(std::string reason);

// How one program of the job ended, as the verdict needs it.
struct ProgramEnd {
  ProgramKind kind = ProgramKind::kProgram;
  std::string label;         // "submission", "scoring program", "ingestion program"
  ProgramOutcome outcome;
  bool oom_killed = false;   // the kernel stopped it at its memory limit
  Status error;              // it could not start, or its exit code is unknown
  bool oom_unknown = false;  // the engine never says so (Podman 4.3's OOMKilled)
};

// Why `end` failed: out of memory (with `memory_limit_bytes`, 0 = the
// host's), killed by a signal (where the engine cannot tell an OOM and a
// limit was set, SIGKILL names it as the likely cause), or its exit code.
Status ProgramExitStatus(const ProgramEnd& end, long long memory_limit_bytes);

// Where the engine cannot say (`oom_unknown`): a SIGKILL (137) under a
// memory limit, which the job then treats as out of memory.
bool LikelyOutOfMemory(const ProgramEnd& end, long long memory_limit_bytes);

// For a failing scoring step: which program of this job (`ends`) or of the
// prediction step (its `metadata` file, which the worker wrote, at
// `prediction_metadata`) exited non-zero before. Empty when none did.
std::string EarlierExitNote(const std::vector<ProgramEnd>& ends,
                            const std::filesystem::path& prediction_metadata);

struct ExitVerdict {
  Status status;  // the job's failure, or Ok
  // Non-zero exits that do not fail the job (the prediction step): each
  // goes to the log and the live log, then the job goes on.
  std::vector<std::string> tolerated;
};

// The exit-code rule, for programs that all ran to their end (no time
// limit, no cancel, no output limit): a program that could not run fails
// the job; out of memory (or likely so) fails it in either step; in the scoring step the
// scoring program's non-zero exit fails it (with EarlierExitNote), in the
// prediction step no exit code does.
ExitVerdict JudgeProgramEnds(const std::vector<ProgramEnd>& ends, bool is_scoring,
                             long long memory_limit_bytes,
                             const std::filesystem::path& prediction_metadata);

// "Execution Time Limit exceeded. Limit was <n> seconds".
std::string TimeLimitMessage(int limit_seconds);

// "Job output larger than <limit> GB (MAX_OUTPUT_SIZE_GB=<limit>): the
// programs wrote <seen> GB and were stopped".
std::string OutputTooLargeMessage(std::uint64_t limit_bytes, std::uint64_t seen_bytes);

}  // namespace cw
