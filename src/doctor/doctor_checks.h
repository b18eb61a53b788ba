// The doctor's checks, one function each, run in the order of DoctorChecks().
// A check reads the settings and the outside world (DoctorDeps) and returns
// its lines: usually one, none when it does not apply (the GPU runtime on a
// CPU worker), two when it found a second problem on the way (the slots and
// their shared IPC). What a later check needs from an earlier one (is the
// engine there, is the image here, the slots) goes through DoctorFindings,
// so a check that depends on a failed one says kSkip instead of failing
// twice.
//
// A new check is a function here and one entry in DoctorChecks(), at the
// place in the order where what it needs is known.
//
// Threads: the checks run one after another on the caller's thread.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "doctor/doctor.h"
#include "engine/engine.h"
#include "gpu/gpu_info.h"
#include "gpu/worker_slots.h"

namespace cw {

// What the checks so far found, for those after them.
struct DoctorFindings {
  bool engine_ok = false;  // the engine answered its version
  EngineInfo info;         // its host (empty when it did not say)
  bool image_here = false;  // options.image is on this machine (probes can run)
  Result<std::vector<GpuInfo>> gpus = std::vector<GpuInfo>{};
  Result<std::vector<WorkerSlot>> slots = std::vector<WorkerSlot>{};
};

// One run of the doctor: its inputs, and what the checks found so far.
struct DoctorRun {
  const WorkerConfig& config;
  const DoctorOptions& options;
  const DoctorDeps& deps;
  DoctorFindings found;
};

using DoctorCheckFn = std::vector<DoctorCheck> (*)(DoctorRun& run);

// Every check, in the order they run.
const std::vector<DoctorCheckFn>& DoctorChecks();

// The checks, each the lines of one topic.
std::vector<DoctorCheck> CheckEngine(DoctorRun& run);        // "engine"
std::vector<DoctorCheck> CheckEngineLimits(DoctorRun& run);  // "limits" (only when some fail)
std::vector<DoctorCheck> CheckImages(DoctorRun& run);        // "images"
std::vector<DoctorCheck> CheckGpus(DoctorRun& run);          // "gpus"
std::vector<DoctorCheck> CheckSlots(DoctorRun& run);         // "slots", "ipc"
std::vector<DoctorCheck> CheckGpuRuntime(DoctorRun& run);    // "gpu runtime"
std::vector<DoctorCheck> CheckHostDirectory(DoctorRun& run);  // "host directory"
std::vector<DoctorCheck> CheckDiskBudgets(DoctorRun& run);   // "disk budgets"
std::vector<DoctorCheck> CheckOutputLimit(DoctorRun& run);   // "output limit"
std::vector<DoctorCheck> CheckSandbox(DoctorRun& run);       // "sandbox"
std::vector<DoctorCheck> CheckRuntime(DoctorRun& run);       // "runtime"
std::vector<DoctorCheck> CheckBroker(DoctorRun& run);        // "broker"

}  // namespace cw
