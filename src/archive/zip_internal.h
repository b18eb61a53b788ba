// Small helpers shared by the three halves of archive/: the layout reader
// (zip_layout.h), unpacking (zip_unpack.cc) and writing (zip_write.cc).
// Not part of the archive part's public surface (that is zip.h).
// Thread rules: plain functions without state; callable from any thread.
#pragma once

#include <zip.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace cw::zip_internal {

// Bytes moved at a time between libzip and a file, both ways.
inline constexpr std::size_t kChunk = 64 * 1024;

inline bool IsCancelled(const std::function<bool()>& cancelled) { return cancelled && cancelled(); }

inline bool IsUnderDir(const std::filesystem::path& candidate, const std::filesystem::path& dir) {
  return std::mismatch(dir.begin(), dir.end(), candidate.begin(), candidate.end()).first ==
         dir.end();
}

inline std::string LibzipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

}  // namespace cw::zip_internal
