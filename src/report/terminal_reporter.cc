#include "report/terminal_reporter.h"

#include "common/log.h"

#include "report/progress.h"

namespace cw {
namespace {

constexpr size_t kMaxPartialLine = 16 * 1024;

const char* kReset = "\033[0m";
const char* kDim = "\033[2m";
const char* kBold = "\033[1m";
const char* kRed = "\033[31m";
const char* kCyan = "\033[36m";
const char* kMagenta = "\033[35m";

}  // namespace

TerminalReporter::TerminalReporter(std::string stage, std::FILE* out, std::FILE* err, bool color)
    : stage_(std::move(stage)), out_(out), err_(err), color_(color) {}

TerminalReporter::~TerminalReporter() { Flush(); }

std::string TerminalReporter::Prefix(ProgramKind kind) const {
  if (kind == ProgramKind::kIngestion) return stage_ == "scoring" ? "ingestion(scoring)" : "ingestion";
  return stage_ == "scoring" ? "scoring" : "submission";
}

Status TerminalReporter::UpdateStatus(JobStatus status, const std::string& details) {
  MutexLock lock(mu_);
  BarLine::WriteClear([&] {
    std::fprintf(err_, "%s==> [%s] %s%s%s%s\n", color_ ? kBold : "", stage_.c_str(),
                 JobStatusName(status), details.empty() ? "" : ": ", EscapeControls(details).c_str(),
                 color_ ? kReset : "");
    std::fflush(err_);
  });
  return Status::Ok();
}

Status TerminalReporter::ReportMd5(const std::string& md5_hex) {
  MutexLock lock(mu_);
  BarLine::WriteClear([&] {
    std::fprintf(err_, "    submission md5 %s\n", md5_hex.c_str());
    std::fflush(err_);
  });
  return Status::Ok();
}

Status TerminalReporter::ReportError(ErrorType type, const std::string& message, bool) {
  MutexLock lock(mu_);
  BarLine::WriteClear([&] {
    std::fprintf(err_, "%s!!! %s: %s%s\n", color_ ? kRed : "", ErrorTypeName(type),
                 EscapeControls(message).c_str(), color_ ? kReset : "");
    std::fflush(err_);
  });
  return Status::Ok();
}

Status TerminalReporter::ReportScores(const nlohmann::json& scores) {
  MutexLock lock(mu_);
  BarLine::WriteClear([&] {
    std::fprintf(err_, "    scores %s\n", scores.dump().c_str());
    std::fflush(err_);
  });
  return Status::Ok();
}

void TerminalReporter::EmitLine(ProgramKind kind, LogStream stream, std::string_view line) {
  const bool is_err = stream == LogStream::kStderr;
  const char* color = kind == ProgramKind::kIngestion ? kMagenta : kCyan;
  std::fprintf(out_, "%s%-18s%s%s %.*s\n", color_ ? color : "", Prefix(kind).c_str(),
               is_err ? "!" : "|", color_ ? kReset : "",
               static_cast<int>(line.size()), line.data());
}

void TerminalReporter::Log(ProgramKind kind, LogStream stream, std::string_view chunk) {
  MutexLock lock(mu_);
  std::string& partial = partial_[{kind, stream}];
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      partial.append(chunk);
      if (partial.size() >= kMaxPartialLine) {
        EmitLine(kind, stream, partial);
        partial.clear();
      }
      break;
    }
    if (partial.empty()) {
      EmitLine(kind, stream, chunk.substr(0, nl));
    } else {
      partial.append(chunk.substr(0, nl));
      EmitLine(kind, stream, partial);
      partial.clear();
    }
    chunk.remove_prefix(nl + 1);
  }
  std::fflush(out_);
}

void TerminalReporter::LiveError(const std::string& message) {
  MutexLock lock(mu_);
  BarLine::WriteClear([&] {
    std::fprintf(err_, "%s!!! %s%s\n", color_ ? kRed : "", EscapeControls(message).c_str(),
                 color_ ? kReset : "");
    std::fflush(err_);
  });
}

void TerminalReporter::DetailedResultsUpdated() {
  MutexLock lock(mu_);
  BarLine::WriteClear([&] {
    std::fprintf(err_, "%s    detailed results updated%s\n", color_ ? kDim : "",
                 color_ ? kReset : "");
    std::fflush(err_);
  });
}

void TerminalReporter::Flush() {
  MutexLock lock(mu_);
  for (auto& [key, partial] : partial_) {
    if (!partial.empty()) EmitLine(key.first, key.second, partial);
    partial.clear();
  }
  std::fflush(out_);
  std::fflush(err_);
}

}  // namespace cw
