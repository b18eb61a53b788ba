// CONTAINER_RUNTIME (the OCI runtime every program runs under, e.g. gVisor's
// runsc) against what the engine says of its runtimes (GET /info): checked
// once at start, so a worker the engine cannot serve refuses to start with a
// message naming the setting, rather than failing every job.
//
// Threads: plain functions of their arguments; call from any thread.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/engine.h"

namespace cw {

// OK when `runtime` is "" (the engine's default) or one of info.runtimes.
// An engine that lists no runtimes at all cannot be judged: OK. Otherwise
// InvalidInput naming CONTAINER_RUNTIME and the runtimes the engine has.
Status CheckRuntimeKnown(const EngineInfo& info, const std::string& runtime);

// Whether `runtime` is gVisor: its program (or, without one, its name) is runsc.
bool IsGvisorRuntime(const EngineInfo& info, const std::string& runtime);

// With GPUs for the programs: gVisor passes NVIDIA GPUs through only with
// --nvproxy among its runtimeArgs; without it InvalidInput that says what to
// add or unset. Other runtimes (and "") are the admin's to judge: OK.
Status CheckRuntimeServesGpus(const EngineInfo& info, const std::string& runtime);

// "runsc (/usr/bin/runsc --network=host)", or for "" "the engine's default
// (runc)", for the start-up log and `doctor`.
std::string DescribeRuntime(const EngineInfo& info, const std::string& runtime);

// What the worker does at start with the engine's /info (`info`, asked
// once for the slots too): the two checks above (the GPU one when `gpus`).
// Returns the runtime's description to log. When the engine did not
// describe itself, a description that says so (the first job's create then
// tells).
Result<std::string> CheckContainerRuntime(const Result<EngineInfo>& info,
                                          const std::string& runtime, bool gpus);

}  // namespace cw
