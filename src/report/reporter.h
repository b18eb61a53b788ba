// Where a job says what is happening: statuses, the submission checksum,
// participant-facing errors, scores and live output. run-local prints to the
// terminal (terminal_reporter.h); the queue worker calls the Codabench site.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cw {

// Submission statuses the worker sets (Codabench's names, sent verbatim).
enum class JobStatus { kPreparing, kRunning, kScoring, kFinished, kFailed };
const char* JobStatusName(JobStatus status);

// Which program a log line or error belongs to.
enum class ProgramKind { kProgram, kIngestion };
const char* ProgramKindName(ProgramKind kind);  // "program" / "ingestion"

enum class ErrorType { kDockerImagePullFail, kExecutionTimeLimitExceeded };
const char* ErrorTypeName(ErrorType type);  // "Docker_Image_Pull_Fail", ...

enum class LogStream { kStdout, kStderr };

class Reporter {
 public:
  virtual ~Reporter() = default;

  virtual Status UpdateStatus(JobStatus status, const std::string& details) = 0;
  virtual Status ReportMd5(const std::string& md5_hex) = 0;
  // An error text for the participant; the site appends it to the job's stderr.
  virtual Status ReportError(ErrorType type, const std::string& message, bool is_scoring) = 0;
  // `scores` is a JSON object column_key -> number.
  virtual Status ReportScores(const nlohmann::json& scores) = 0;

  // Live output of a program, as it comes. Called from streaming threads, must
  // be thread-safe and must never block the job for long (drop rather than stall).
  virtual void Log(ProgramKind kind, LogStream stream, std::string_view chunk) = 0;
  // A message about the job itself, shown to the participant live ("stderr" kind).
  virtual void LiveError(const std::string& message) = 0;
  virtual void DetailedResultsUpdated() = 0;
};

}  // namespace cw
