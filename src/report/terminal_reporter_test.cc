#include "report/terminal_reporter.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace cw {
namespace {

std::string ReadAll(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}

TEST(TerminalReporter, PrefixesWholeLinesPerProgramAndStream) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  {
    TerminalReporter r("prediction", out, err, false);
    r.Log(ProgramKind::kIngestion, LogStream::kStdout, "hel");
    r.Log(ProgramKind::kProgram, LogStream::kStderr, "oops\n");
    r.Log(ProgramKind::kIngestion, LogStream::kStdout, "lo\nwor");
    r.Log(ProgramKind::kIngestion, LogStream::kStdout, "ld\n");
    r.Log(ProgramKind::kProgram, LogStream::kStdout, "no newline at end");
  }
  std::string text = ReadAll(out);
  EXPECT_NE(text.find("submission        ! oops\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ingestion         | hello\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ingestion         | world\n"), std::string::npos) << text;
  EXPECT_NE(text.find("submission        | no newline at end\n"), std::string::npos) << text;
  std::fclose(out);
  std::fclose(err);
}

TEST(TerminalReporter, LongLineWithoutNewlineIsCutNotHoarded) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  TerminalReporter r("scoring", out, err, false);
  std::string chunk(4096, 'x');
  for (int i = 0; i < 64; ++i) r.Log(ProgramKind::kProgram, LogStream::kStdout, chunk);
  std::string text = ReadAll(out);
  EXPECT_GE(text.size(), 200000u);  // most of it was written already, not held
  EXPECT_EQ(text.rfind("scoring", 0), 0u);
  std::fclose(out);
  std::fclose(err);
}

TEST(TerminalReporter, StatusesGoToTheErrorStream) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  TerminalReporter r("scoring", out, err, false);
  ASSERT_TRUE(r.UpdateStatus(JobStatus::kRunning, "scoring_hostname-box").ok());
  ASSERT_TRUE(r.ReportError(ErrorType::kExecutionTimeLimitExceeded, "too slow", true).ok());
  std::string text = ReadAll(err);
  EXPECT_NE(text.find("==> [scoring] Running: scoring_hostname-box"), std::string::npos);
  EXPECT_NE(text.find("Execution_Time_Limit_Exceeded: too slow"), std::string::npos);
  EXPECT_TRUE(ReadAll(out).empty());
  std::fclose(out);
  std::fclose(err);
}

// The worker's own words (which may quote a zip entry's name) cannot drive
// the terminal; a program's output is its own and is shown as written.
TEST(TerminalReporter, TheWorkersWordsHaveTheirControlCharactersEscaped) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  TerminalReporter r("prediction", out, err, false);
  ASSERT_TRUE(r.UpdateStatus(JobStatus::kFailed, "bad entry 'a\x1b[2Jb'").ok());
  ASSERT_TRUE(r.ReportError(ErrorType::kDockerImagePullFail, "pull\x1b]0;x\x07", false).ok());
  r.LiveError("line\nforged");
  std::string text = ReadAll(err);
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("bad entry 'a\\x1b[2Jb'"), std::string::npos) << text;
  EXPECT_NE(text.find("line\\nforged"), std::string::npos) << text;
  std::fclose(out);
  std::fclose(err);
}

}  // namespace
}  // namespace cw
