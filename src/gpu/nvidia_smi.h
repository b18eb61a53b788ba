// The fallback when NVML cannot be loaded: nvidia-smi's CSV query. Its output
// is text meant for people, so the parser is lenient about spacing and strict
// about anything that is not a GPU line.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/command.h"

namespace cw {

struct GpuInfo;

// {"nvidia-smi", "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"}
std::vector<std::string> NvidiaSmiCommand();

// Lines of "index, uuid, name, memory.total (MiB)". "[N/A]" memory reads as
// unknown (0). Unavailable, quoting the line, for anything else that is not a
// GPU line (nvidia-smi prints its errors where the CSV would be).
Result<std::vector<GpuInfo>> ParseNvidiaSmiCsv(std::string_view output);

// Runs NvidiaSmiCommand(). NotFound when nvidia-smi is not installed;
// "No devices were found" is an empty list; any other failure is Unavailable
// with nvidia-smi's own first line.
Result<std::vector<GpuInfo>> QueryNvidiaSmi(const CommandRunner& run,
                                            std::chrono::milliseconds timeout);

}  // namespace cw
