// Digests of files and strings, as lowercase hex. Files are read in chunks,
// so any size is fine.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cw {

// A missing file is NotFound, an unreadable one PermissionDenied or IoError.
// `cancelled`, when given, is asked between chunks (a submission zip can be
// gigabytes): true stops with a Cancelled status.
Result<std::string> Md5FileHex(const std::filesystem::path& path,
                               const std::function<bool()>& cancelled = {});
Result<std::string> Sha256FileHex(const std::filesystem::path& path);

std::string Sha256Hex(std::string_view data);

}  // namespace cw
