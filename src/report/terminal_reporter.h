// A Reporter for people at a terminal (run-local): statuses as headings,
// each program's output line by line behind a prefix naming the program.
//
// Thread rules: every method may be called from any thread (the job's and
// its programs' output threads report at once). mu_ guards the unfinished
// lines and is held while a line is written, so lines never interleave: the
// only thing waited on under it is the terminal itself. It is taken before
// the progress bar's lock (BarLine::WriteClear), never after.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include "common/thread_annotations.h"
#include "report/reporter.h"

namespace cw {

class TerminalReporter : public Reporter {
 public:
  // `stage` is "prediction" or "scoring"; it names the programs in prefixes.
  // Output goes to `out` (stdout normally); statuses and errors to `err`.
  TerminalReporter(std::string stage, std::FILE* out, std::FILE* err, bool color);
  ~TerminalReporter() override;

  Status UpdateStatus(JobStatus status, const std::string& details) override;
  Status ReportMd5(const std::string& md5_hex) override;
  Status ReportError(ErrorType type, const std::string& message, bool is_scoring) override;
  Status ReportScores(const nlohmann::json& scores) override;
  void Log(ProgramKind kind, LogStream stream, std::string_view chunk) override;
  void LiveError(const std::string& message) override;
  void DetailedResultsUpdated() override;

  // Writes what is left of unfinished lines.
  void Flush();

  // The prefix for a program's lines, e.g. "scoring" or "ingestion".
  std::string Prefix(ProgramKind kind) const;

 private:
  void EmitLine(ProgramKind kind, LogStream stream, std::string_view line) REQUIRES(mu_);

  const std::string stage_;
  std::FILE* const out_;
  std::FILE* const err_;
  const bool color_;
  Mutex mu_;
  // Unfinished line per (program, stream); capped so a program printing
  // without newlines cannot grow it.
  std::map<std::pair<ProgramKind, LogStream>, std::string> partial_ GUARDED_BY(mu_);
};

}  // namespace cw
