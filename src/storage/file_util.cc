#include "storage/file_util.h"

#include "common/fd.h"
#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <system_error>
#include <vector>

namespace cw {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

Status CopyFd(int in, const fs::path& src, int out, const fs::path& dest, std::uint64_t max_bytes,
              const TransferProgressFn& progress, std::uint64_t size) {
  std::vector<char> buffer(kChunk);
  std::uint64_t total = 0;
  while (total < max_bytes) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), max_bytes - total));
    ssize_t n = ::read(in, buffer.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read " + src.string() + ": " + ErrnoText(errno));
    }
    if (n == 0) return Status::Ok();
    CW_RETURN_IF_ERROR(WriteAll(out, buffer.data(), static_cast<std::size_t>(n), dest));
    total += static_cast<std::uint64_t>(n);
    if (progress) progress(total, size);
  }
  return Status::Ok();
}

}  // namespace

Status CopyFdToFile(int in, const fs::path& src, const fs::path& dest, std::uint64_t max_bytes,
                    const TransferProgressFn& progress) {
  // O_NOFOLLOW: a link already sitting at `dest` must not redirect the write.
  Fd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (out.get() < 0) return IoError("cannot create " + dest.string() + ": " + ErrnoText(errno));
  std::uint64_t size = 0;
  if (struct stat st; progress && ::fstat(in, &st) == 0 && S_ISREG(st.st_mode)) {
    size = static_cast<std::uint64_t>(st.st_size);
  }
  Status status = CopyFd(in, src, out.get(), dest, max_bytes, progress, size);
  if (status.ok()) {
    if (int err = out.Close(); err != 0) status = IoError("cannot write " + dest.string() + ": " + ErrnoText(err));
  }
  if (!status.ok()) {
    std::error_code ec;
    fs::remove(dest, ec);
  }
  return status;
}

Result<int> OpenForReading(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return NotFound("no file at " + path.string());
    if (err == EACCES || err == EPERM) return PermissionDenied("cannot read " + path.string() + ": " + ErrnoText(err));
    return IoError("cannot open " + path.string() + ": " + ErrnoText(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return IoError("cannot read " + path.string() + ": " + ErrnoText(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidInput(path.string() + " is a folder, not a file");
  }
  return fd;
}

Status CopyFileStreaming(const fs::path& src, const fs::path& dest,
                         const TransferProgressFn& progress) {
  CW_ASSIGN_OR_RETURN(int in_fd, OpenForReading(src));
  Fd in(in_fd);
  return CopyFdToFile(in.get(), src, dest, UINT64_MAX, progress);
}

Status CopyFileAtomically(const fs::path& src, const fs::path& dest,
                          const TransferProgressFn& progress) {
  fs::path tmp = dest;
  tmp += ".part-" + RandomHex(6);
  CW_RETURN_IF_ERROR(CopyFileStreaming(src, tmp, progress));
  std::error_code ec;
  fs::rename(tmp, dest, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return IoError("cannot rename " + tmp.string() + " to " + dest.string() + ": " + ec.message());
  }
  return Status::Ok();
}


}  // namespace cw
