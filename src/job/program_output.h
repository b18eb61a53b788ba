// A program's output, apart from the program itself (as containerd keeps a
// task apart from its I/O): its stdout and stderr, each to a file on disk
// that is capped (past the cap the rest is dropped with a note) and uploaded
// when the program ends, and each chunk to the live reporter as it comes.
//
// Thread rules: Write and Close are called from the one thread that streams
// the program (ProgramRun's); the paths may be read from any thread. After
// Close (and that thread's join) the files are whole.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "engine/engine.h"
#include "report/reporter.h"

namespace cw {

// One stream's file on disk, cut at `cap` bytes (0: no cap) with a note.
class LogFile {
 public:
  LogFile(std::filesystem::path path, std::uint64_t cap);
  ~LogFile() { Close(); }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  void Write(std::string_view data);
  void Close();
  const std::filesystem::path& path() const { return path_; }
  bool ok() const { return file_ != nullptr; }

 private:
  const std::filesystem::path path_;
  const std::uint64_t cap_;
  std::FILE* file_ = nullptr;
  std::uint64_t written_ = 0;
  bool truncated_ = false;
};

class ProgramOutput {
 public:
  // <logs_dir>/<program|ingestion>.stdout and .stderr; ok() says whether both
  // could be created.
  ProgramOutput(ProgramKind kind, Reporter& reporter, const std::filesystem::path& logs_dir,
                std::uint64_t cap);

  bool ok() const { return out_.ok() && err_.ok(); }
  void Write(StreamKind stream, std::string_view data);
  void Close();
  const std::filesystem::path& stdout_path() const { return out_.path(); }
  const std::filesystem::path& stderr_path() const { return err_.path(); }

 private:
  const ProgramKind kind_;
  Reporter& reporter_;
  LogFile out_;
  LogFile err_;
};

}  // namespace cw
