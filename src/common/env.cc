#include "common/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/fd.h"

namespace cw {
namespace fs = std::filesystem;

std::string DescribeFileError(int err) {
  if (err == ENOSPC || err == EDQUOT) return "no space left on the worker's disk";
  return ErrnoText(err);
}

namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  Status Write(const char* data, std::size_t n) override {
    while (n > 0) {
      ssize_t done = ::pwrite(fd_.get(), data, n, static_cast<off_t>(pos_));
      if (done < 0) {
        if (errno == EINTR) continue;
        return Failed("write", errno);
      }
      data += done;
      n -= static_cast<std::size_t>(done);
      pos_ += static_cast<std::uint64_t>(done);
    }
    return Status::Ok();
  }
  Status Seek(std::uint64_t offset) override {
    pos_ = offset;
    return Status::Ok();
  }
  std::uint64_t Tell() const override { return pos_; }
  Status SetMode(mode_t mode) override {
    if (::fchmod(fd_.get(), mode) != 0) return Failed("set permissions of", errno);
    return Status::Ok();
  }
  Status Close() override {
    if (int err = fd_.Close(); err != 0) return Failed("write", err);
    return Status::Ok();
  }

 private:
  Status Failed(const char* what, int err) const {
    return IoError(std::string("cannot ") + what + " " + name_ + ": " + DescribeFileError(err));
  }

  Fd fd_;
  std::string name_;
  std::uint64_t pos_ = 0;
};

class PosixEnv final : public Env {
 public:
  Clock::time_point Now() override { return Clock::now(); }

  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 Clock::time_point deadline) override {
    cv.wait_until(lock, deadline);
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const fs::path& path,
                                                        const WritableFileOptions& o) override {
    const std::string name = o.name.empty() ? path.string() : o.name;
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (o.exclusive ? O_EXCL : O_TRUNC);
    int fd = ::open(path.c_str(), flags, o.mode);
    if (fd < 0) {
      int err = errno;
      if (err == EEXIST) return AlreadyExists(name + " already exists");
      if (err == ELOOP) return InvalidInput(name + " is a symbolic link");
      return IoError("cannot create " + name + ": " + DescribeFileError(err));
    }
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(fd, name));
  }

  Status RenameFile(const fs::path& from, const fs::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return IoError("cannot rename " + from.filename().string() + " to " +
                     to.filename().string() + ": " + DescribeFileError(errno));
    }
    return Status::Ok();
  }

  Status RemoveFile(const fs::path& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return IoError("cannot remove " + path.filename().string() + ": " + DescribeFileError(errno));
    }
    return Status::Ok();
  }
};

}  // namespace

Env& Env::Default() {
  static PosixEnv* env = new PosixEnv;  // never destroyed: threads may outlive main's statics
  return *env;
}

}  // namespace cw
