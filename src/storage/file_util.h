// File helpers shared by the storage back ends and the bundle cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"
#include "storage/storage.h"

namespace cw {

// Opens `path` for reading; the error names the path and says why
// (NotFound, PermissionDenied or IoError). Returns the descriptor.
Result<int> OpenForReading(const std::filesystem::path& path);

// Copies what is left to read of the open file `in` (`src` names it in
// messages) into `dest`, created (never through a link) or truncated, in
// 64 KiB chunks and at most `max_bytes`, telling `progress` (when set) after
// each chunk. On failure `dest` is removed, so no half file stays behind.
Status CopyFdToFile(int in, const std::filesystem::path& src, const std::filesystem::path& dest,
                    std::uint64_t max_bytes = UINT64_MAX, const TransferProgressFn& progress = {});

// Copies `src` into `dest` (created or truncated) in 64 KiB chunks, telling
// `progress` (when set) after each. On failure `dest` is removed, so no half
// file stays behind.
Status CopyFileStreaming(const std::filesystem::path& src, const std::filesystem::path& dest,
                         const TransferProgressFn& progress = {});

// Copies `src` to `dest` through a temporary file beside `dest` and a rename,
// so readers of `dest` see either the old or the whole new content.
Status CopyFileAtomically(const std::filesystem::path& src, const std::filesystem::path& dest,
                          const TransferProgressFn& progress = {});


}  // namespace cw
