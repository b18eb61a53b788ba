// A Reporter for people at a terminal (run-local): statuses as headings,
// each program's output line by line behind a prefix naming the program.
#pragma once

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <utility>

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
  void EmitLine(ProgramKind kind, LogStream stream, std::string_view line);

  std::string stage_;
  std::FILE* out_;
  std::FILE* err_;
  bool color_;
  std::mutex mu_;
  // Unfinished line per (program, stream); capped so a program printing
  // without newlines cannot grow it.
  std::map<std::pair<ProgramKind, LogStream>, std::string> partial_;
};

}  // namespace cw
