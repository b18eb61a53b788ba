// Reading files that a hostile program (or a stranger's bundle) may have
// left: never through a symbolic link, never from a FIFO, socket or device
// (opening or reading one can block forever or touch the host), and never
// more than a stated number of bytes. Messages name the file by its name
// only, never the host path or the file's content, so they can be shown to
// the participant or organizer as they are.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/fd.h"
#include "common/status.h"

namespace cw {

// Opens `path` for reading without following a link: lstat first (so a
// device or FIFO is refused before it is opened), then
// open(O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC), then fstat; only a
// regular file is accepted, and O_NONBLOCK is cleared before it is returned.
// Errors: NotFound when nothing is there; InvalidInput for a symbolic link
// ("scores.txt is a symbolic link; ...") or anything not a regular file
// ("scores.json is not a regular file (a FIFO)"); IoError otherwise.
Result<Fd> OpenRegularFile(const std::filesystem::path& path);

// The whole of `path`, read as OpenRegularFile opens it, when it holds at most
// `max_bytes` bytes; InvalidInput "scores.txt is 12.3 MB, more than the 1 MB
// allowed" when it holds more ("scores.txt is more than the 1 MB allowed"
// when the two sizes would read the same, or it grew while being read).
Result<std::string> ReadRegularFile(const std::filesystem::path& path, std::uint64_t max_bytes);

// True when `path` itself (not what a link points at) is a regular file.
bool IsRegularFileNoFollow(const std::filesystem::path& path);

// "512 bytes", "3 KB", "12.3 MB" (units of 1024, one decimal at most).
std::string DescribeBytes(std::uint64_t bytes);

}  // namespace cw
