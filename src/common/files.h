// Small filesystem helpers the pipeline needs in several places.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"

namespace cw {

// Lower-case hex of `bytes` random bytes.
std::string RandomHex(int bytes);

// Creates a new, empty folder parent/prefix<random> (mode 0755) and returns it.
Result<std::filesystem::path> MakeUniqueDir(const std::filesystem::path& parent,
                                            const std::string& prefix);

// Copies the contents of `src` into `dst` (created), folders recursively.
// Symbolic links are skipped: a participant's link must never make the worker
// read a host file.
Status CopyTreeContents(const std::filesystem::path& src, const std::filesystem::path& dst);

// Bytes of regular files under `dir` (not following links).
std::uintmax_t TreeSize(const std::filesystem::path& dir);

// What a folder written by a program holds: apparent bytes of its regular
// files (what zipping it would read) and entries of any kind. Never follows
// links, never opens a file, and carries on past entries that vanish or
// cannot be read while it walks (the program may still be writing).
struct TreeUsage {
  std::uintmax_t bytes = 0;
  std::uintmax_t entries = 0;
  std::uintmax_t unreadable = 0;  // folders it could not list: their bytes are not in `bytes`
};
TreeUsage MeasureTree(const std::filesystem::path& dir);

// Moves `path` under `base` to the same place under `host_base` (contract §5:
// the engine's daemon sees the worker's base folder at HOST_DIRECTORY). A
// path outside `base` is returned unchanged.
std::filesystem::path ToHostPath(const std::filesystem::path& path,
                                 const std::filesystem::path& base,
                                 const std::filesystem::path& host_base);

}  // namespace cw
