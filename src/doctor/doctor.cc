#include "doctor/doctor.h"

#include <sys/statvfs.h>

#include <cstdio>

#include "doctor/doctor_checks.h"

namespace cw {
namespace fs = std::filesystem;

using Level = DoctorCheck::Level;

Result<DiskSpace> StatDiskSpace(const fs::path& path) {
  struct statvfs st {};
  if (statvfs(path.c_str(), &st) != 0) return IoError("statvfs " + path.string() + " failed");
  DiskSpace d;
  d.free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  d.total_bytes = static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize;
  return d;
}

std::vector<DoctorCheck> RunDoctor(const WorkerConfig& config, const DoctorOptions& options,
                                   const DoctorDeps& deps) {
  DoctorRun run{config, options, deps, {}};
  std::vector<DoctorCheck> out;
  for (DoctorCheckFn check : DoctorChecks()) {
    for (DoctorCheck& line : check(run)) out.push_back(std::move(line));
  }
  return out;
}

std::string FormatCheck(const DoctorCheck& check) {
  const char* level = check.level == Level::kOk     ? "ok  "
                      : check.level == Level::kWarn ? "warn"
                      : check.level == Level::kFail ? "FAIL"
                                                    : "skip";
  char head[64];
  std::snprintf(head, sizeof head, "%s  %-15s ", level, check.name.c_str());
  std::string out = head;
  std::string indent(std::string(head).size(), ' ');
  for (std::size_t i = 0; i < check.detail.size(); ++i) {
    out += check.detail[i];
    if (check.detail[i] == '\n') out += indent;
  }
  if (!check.fix.empty()) out += "\n" + indent + "-> " + check.fix;
  return out;
}

}  // namespace cw
