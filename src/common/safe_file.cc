#include "common/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>

namespace cw {
namespace fs = std::filesystem;

namespace {

// What a file that is not a regular one is, for "is not a regular file (a FIFO)".
const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "of an unknown kind";
}

Status NotRegular(const std::string& name, mode_t mode) {
  if (S_ISLNK(mode)) {
    return InvalidInput(name +
                        " is a symbolic link; the worker does not follow links out of a "
                        "program's output or a bundle");
  }
  return InvalidInput(name + " is not a regular file (" + KindOf(mode) + ")");
}

}  // namespace

std::string DescribeBytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  static const char* const kUnits[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  std::string number = text;
  if (number.size() > 2 && number.ends_with(".0")) number.resize(number.size() - 2);
  return number + " " + kUnits[unit];
}

Result<Fd> OpenRegularFile(const fs::path& path) {
  const std::string name = path.filename().string();
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return NotFound(name + " does not exist");
    return IoError("cannot look at " + name + ": " + ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) return NotRegular(name, st.st_mode);

  // The file may have been swapped since lstat: O_NOFOLLOW refuses a link,
  // O_NONBLOCK keeps a FIFO from blocking the open, fstat checks again.
  int raw = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (raw < 0) {
    int err = errno;
    if (err == ELOOP) return NotRegular(name, S_IFLNK);
    if (err == ENOENT) return NotFound(name + " does not exist");
    if (err == ENXIO) return NotRegular(name, S_IFSOCK);  // what open(2) says for a socket
    return IoError("cannot open " + name + ": " + ErrnoText(err));
  }
  Fd fd(raw);
  if (::fstat(fd.get(), &st) != 0) {
    return IoError("cannot look at " + name + ": " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) return NotRegular(name, st.st_mode);
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return IoError("cannot set up reading " + name + ": " + ErrnoText(errno));
  }
  return fd;
}

Result<std::string> ReadRegularFile(const fs::path& path, std::uint64_t max_bytes) {
  const std::string name = path.filename().string();
  CW_ASSIGN_OR_RETURN(Fd fd, OpenRegularFile(path));
  // "is 12.3 MB, more than the 1 MB allowed"; "is more than the 1 MB
  // allowed" when the sizes would read the same, or the size is not known
  // (a file still growing).
  auto too_big = [&](std::optional<std::uint64_t> size) {
    std::string allowed = DescribeBytes(max_bytes);
    std::string is = size && DescribeBytes(*size) != allowed ? DescribeBytes(*size) + ", " : "";
    return InvalidInput(name + " is " + is + "more than the " + allowed + " allowed");
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return IoError("cannot look at " + name + ": " + ErrnoText(errno));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes) return too_big(size);

  std::string text;
  text.reserve(static_cast<size_t>(size));
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read " + name + ": " + ErrnoText(errno));
    }
    if (n == 0) break;
    // Read no further than one buffer past the cap: the file may be growing.
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      return too_big(std::nullopt);
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

bool IsRegularFileNoFollow(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace cw
