// What the worker's own image (sandbox/sandbox_image.h) does for a job's
// folder when the worker's user cannot: a plain user (the systemd unit's
// way) cannot remove or read what programs left as root in their folders
// (a `0700` folder, a read-only one, a file in it). A short-lived container
// of that image, running as root with the folder bind-mounted at /target,
// empties it (`/sandbox remove /target`) or sizes it (`/sandbox size
// /target`). It carries the labels of the job's containers, so a
// restarted worker's sweep removes one a crash left.
//
// Thread rules: a FolderSandbox is a value set once (from the job's
// environment) and read-only after; RunSandbox may be called from any
// thread (the engine is thread-safe), and starts one thread of its own for
// the time limit, joined before it returns.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "common/status.h"
#include "engine/engine.h"
#include "job/job_environment.h"

namespace cw {

struct FolderSandbox {
  ContainerEngine* engine = nullptr;  // null: there is none
  std::string image;                  // env.sandbox_image; "": there is none
  std::filesystem::path base_dir;     // this process's view of HOST_DIRECTORY
  std::filesystem::path host_dir;     // the engine's view of it
  std::map<std::string, std::string> labels;  // the job's (node, slot), for the sweep
  std::chrono::seconds timeout{600};  // then the container is killed

  bool usable() const { return engine != nullptr && !image.empty(); }
};

// The sandbox of `env`'s jobs (unusable when `env` has no image of its own).
FolderSandbox SandboxFor(const JobEnvironment& env, ContainerEngine& engine);

// Runs `/sandbox <verb> /target` (verb: "remove" or "size") with `folder`
// (this process's path) at /target; what it printed when it exits 0, else
// a status with its exit code and error lines.
Result<std::string> RunSandbox(const FolderSandbox& sandbox, const std::string& verb,
                               const std::filesystem::path& folder);

// `/sandbox size`: the bytes the files under `folder` take on disk.
Result<std::uint64_t> SandboxSize(const FolderSandbox& sandbox, const std::filesystem::path& folder);

}  // namespace cw
