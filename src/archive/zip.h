// Zip files in and out, safely and without holding whole files in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"

namespace cw {

struct ExtractStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

// Unzips `zip_path` into `dest_dir` (created when missing). Refuses, with an
// InvalidInput status naming the entry, any entry that would land outside
// dest_dir (absolute paths, "..", drive letters) and symbolic links. Skips
// macOS litter (__MACOSX/). A file that is not a zip is InvalidInput saying so.
Result<ExtractStats> ExtractZip(const std::filesystem::path& zip_path,
                                const std::filesystem::path& dest_dir);

// Zips the contents of `src_dir` (paths relative to it, empty folders kept,
// symbolic links skipped) into `zip_path`, streaming from the files.
Status CreateZip(const std::filesystem::path& src_dir, const std::filesystem::path& zip_path);

// True when the file starts like a zip archive (local header or empty-archive
// end record).
bool LooksLikeZip(const std::filesystem::path& path);

}  // namespace cw
