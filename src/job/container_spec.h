// What a job's program runs in: the ContainerSpec made from the job's run_args,
// its folder and the slot's options, with nothing asked of an engine. The
// names, labels, mounts, environment, security options and network mode of
// every program's container are decided here and only here.
//
// Thread rules: functions of their arguments only; any thread.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "job/job_environment.h"
#include "job/job_folder.h"
#include "job/run_args.h"
#include "report/reporter.h"

namespace cw {

// Labels every job container carries, so a worker can find its containers
// after a crash or a revoke.
inline constexpr const char* kLabelWorker = "org.codabench.worker";
inline constexpr const char* kLabelSubmission = "org.codabench.submission";
inline constexpr const char* kLabelJob = "org.codabench.job";
inline constexpr const char* kLabelKind = "org.codabench.kind";
inline constexpr const char* kLabelStage = "org.codabench.stage";

// The engine security options of every container a job's slot runs:
// no-new-privileges, and label=disable under podman.
std::vector<std::string> ContainerSecurityOptions(const ContainerOptions& c);

// The capabilities the reference worker drops from every program.
const std::vector<std::string>& DroppedCapabilities();

// "scoring" or "prediction".
const char* StageName(bool is_scoring);

// How messages name a program: "submission", "scoring program" or
// "ingestion program".
std::string ProgramLabel(ProgramKind kind, bool is_scoring);

// The Python worker's container name, so admins' `docker ps` habits work:
// "ingestion_uPK-<user>_sID-<submission>", and "scoring_..." for the program
// in both steps.
std::string PythonContainerName(ProgramKind kind, const RunArgs& args);

struct ProgramContainer {
  ContainerSpec spec;
  // The folders of this process's view that spec.mounts name (in the
  // engine's view): the caller creates them before the container.
  std::vector<std::filesystem::path> mount_sources;
};

// The container of the program of `kind` that runs `command` (after the
// legacy variables are replaced). `job_uid` tells this job's containers from
// another run's of the same submission; `network_mode` is the network holder
// to join ("container:<id>"), or empty for a network of the program's own on
// env.container.network.
ProgramContainer ProgramContainerSpec(const RunArgs& args, ProgramKind kind,
                                      const std::string& command, const std::string& job_uid,
                                      const JobFolder& folder, const JobEnvironment& env,
                                      const std::string& network_mode);

}  // namespace cw
