// Sizes as the worker's settings and messages write them: decimal gigabytes
// (1 GB = 1e9 bytes), the unit of MAX_UNPACKED_SIZE_GB, MAX_OUTPUT_SIZE_GB
// and the other *_GB settings.
#pragma once

#include <cstdint>
#include <string>

namespace cw {

// A *_GB setting in bytes (negative counts as 0).
std::uint64_t GbToBytes(double gb);

// Compact decimal gigabytes, as an admin writes them: "1", "0.5", "2.25",
// "0.001", "1000000".
std::string FormatGb(std::uint64_t bytes);

}  // namespace cw
