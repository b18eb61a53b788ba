// An owned file descriptor, and errno as text, for the code that streams
// files with read(2)/write(2) (unzip, copies).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace cw {

inline std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Returns close()'s errno (0 when fine): on some file systems a full disk
  // is only reported there.
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

}  // namespace cw
