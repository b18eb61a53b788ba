// The environment a job runs in, as the pipeline sees it: a monotonic clock,
// waits on that clock, and the file writes whose failure must end a job
// cleanly (unzipping a bundle, zipping the output, the output's `metadata`).
// Env::Default() is the real one. Tests hand in a TestEnv
// (common/test_env.h), which fails chosen writes (a full disk, an I/O error)
// and moves time by hand, so a time limit is reached without waiting for it.
// An Env is passed down (JobEnvironment::env, default arguments); nothing
// swaps a global one.
//
// Thread rules: every Env method may be called from any thread at once;
// Default() lives as long as the process. A WritableFile is used by one
// thread at a time (whoever holds it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace cw {

// A file open for writing. Errors are IoError naming the file as
// WritableFileOptions::name says (never more of the host's paths than that).
class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes, unheard, when Close was not called
  // Writes all `n` bytes at the current position and moves past them.
  virtual Status Write(const char* data, std::size_t n) = 0;
  // Moves the position (the zip writer goes back to fill in headers).
  virtual Status Seek(std::uint64_t offset) = 0;
  virtual std::uint64_t Tell() const = 0;
  // Sets the permission bits as given (the umask does not apply).
  virtual Status SetMode(mode_t mode) = 0;
  // Some file systems report a full disk only here.
  virtual Status Close() = 0;
};

struct WritableFileOptions {
  // Whatever is at the path already: truncated (O_TRUNC) or refused (O_EXCL,
  // AlreadyExists). A symbolic link at the path is never written through
  // (O_NOFOLLOW): InvalidInput.
  bool exclusive = false;
  mode_t mode = 0600;  // for a new file, less the umask; SetMode for exact bits
  std::string name;    // how messages name the file; empty: its full path
};

class Env {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~Env() = default;
  // The real clock and file system.
  static Env& Default();

  virtual Clock::time_point Now() = 0;
  // Blocks on `cv` (whose mutex `lock` holds) until it is notified or Now()
  // reaches `deadline`. It may return sooner, as a condition variable may:
  // callers wait in a loop on their own condition (see WaitUntilOr).
  virtual void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         Clock::time_point deadline) = 0;

  // Creates or opens `path` for writing (see WritableFileOptions).
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::filesystem::path& path, const WritableFileOptions& options) = 0;
  // rename(2); IoError naming both by their file names.
  virtual Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // unlink(2); nothing there is fine.
  virtual Status RemoveFile(const std::filesystem::path& path) = 0;
};

// Waits on `cv` (locked by `lock`) until `done()` or until `env`'s clock
// reaches `deadline`. Returns done().
template <typename Done>
bool WaitUntilOr(Env& env, std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 Env::Clock::time_point deadline, Done done) {
  while (!done()) {
    if (env.Now() >= deadline) return false;
    env.WaitUntil(cv, lock, deadline);
  }
  return true;
}

// How a file error reads to whoever must act: the errno's text, but a full
// disk says whose disk it is.
std::string DescribeFileError(int err);

}  // namespace cw
