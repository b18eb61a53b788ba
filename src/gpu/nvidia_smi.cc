#include "gpu/nvidia_smi.h"

#include <charconv>

#include "gpu/gpu_info.h"
#include "gpu/text.h"

namespace cw {
namespace {

using gpu_text::FirstLine;
using gpu_text::IsDigits;
using gpu_text::Split;
using gpu_text::Trim;

constexpr std::string_view kNoDevices = "No devices were found";

template <typename T>
bool ToNumber(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// memory.total in MiB; "[N/A]" (and anything else not a number) is unknown.
std::uint64_t MemoryBytes(std::string_view mib) {
  std::uint64_t value = 0;
  if (!IsDigits(mib) || !ToNumber(mib, value)) return 0;
  return value * 1024 * 1024;
}

Status NotAGpuLine(std::string_view line) {
  return Unavailable("nvidia-smi answered \"" + FirstLine(line) +
                     "\" where a GPU line (index, uuid, name, memory) was expected");
}

}  // namespace

std::vector<std::string> NvidiaSmiCommand() {
  return {"nvidia-smi", "--query-gpu=index,uuid,name,memory.total",
          "--format=csv,noheader,nounits"};
}

Result<std::vector<GpuInfo>> ParseNvidiaSmiCsv(std::string_view output) {
  std::vector<GpuInfo> gpus;
  for (std::string_view raw : Split(output, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty()) continue;
    if (line == kNoDevices) return std::vector<GpuInfo>{};
    std::vector<std::string_view> fields = Split(line, ',');
    if (fields.size() < 4) return NotAGpuLine(line);
    GpuInfo gpu;
    std::string_view index = Trim(fields.front());
    if (!IsDigits(index) || !ToNumber(index, gpu.index)) return NotAGpuLine(line);
    gpu.uuid = std::string(Trim(fields[1]));
    if (gpu.uuid.empty() || gpu.uuid == "[N/A]") return NotAGpuLine(line);
    // The CSV is not quoted: should a name ever hold a comma, it is
    // everything between the UUID and the last field.
    std::string_view first = fields[2];
    std::string_view last = fields[fields.size() - 2];
    gpu.name =
        std::string(Trim(std::string_view(first.data(), last.data() + last.size() - first.data())));
    gpu.memory_total_bytes = MemoryBytes(Trim(fields.back()));
    gpus.push_back(std::move(gpu));
  }
  return gpus;
}

Result<std::vector<GpuInfo>> QueryNvidiaSmi(const CommandRunner& run,
                                            std::chrono::milliseconds timeout) {
  Result<CommandOutput> out = run(NvidiaSmiCommand(), timeout);
  if (!out.ok()) {
    if (out.status().code() == Code::kNotFound) return out.status();
    return Unavailable("nvidia-smi failed: " + out.status().message());
  }
  // With the driver loaded and no GPU, nvidia-smi says so and exits non-zero:
  // that is a machine without GPUs, not a broken one.
  if (out->output.find(kNoDevices) != std::string::npos) return std::vector<GpuInfo>{};
  if (out->exit_code != 0) {
    std::string said = FirstLine(out->output);
    return Unavailable("nvidia-smi exited with code " + std::to_string(out->exit_code) +
                       (said.empty() ? std::string() : ": " + said));
  }
  return ParseNvidiaSmiCsv(out->output);
}

}  // namespace cw
