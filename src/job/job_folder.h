// A job's folder on the host: BASE/jobs/[<node>/]job-<id>-<stage>-<random>/,
// private to the worker's user, with the subfolders the programs see
// (docs/design.md, "The pipeline"), and the sweep of the folders a killed
// run left. Where the host allows it (JobLimits::job_filesystem), the
// folders the programs can write are on a filesystem of the job's own,
// mounted at work/ (job/job_filesystem.h); the worker's own files (bundles/,
// logs/, the output zip) stay beside it, on the host's disk.
//
// Thread rules: a JobFolder is a value, fixed once Create returns; any
// thread may read it. Nothing here locks.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "job/folder_sandbox.h"
#include "job/job_environment.h"
#include "report/reporter.h"

namespace cw {

// BASE/jobs/<subfolder>: where `env`'s jobs get their folders.
std::filesystem::path JobsFolder(const JobEnvironment& env);

// Removes the job folders a killed run left under JobsFolder(env) (through
// `sandbox` what the worker's user cannot); returns how many. Only for a
// worker that knows no job of its own runs there.
int RemoveLeftoverJobFolders(const JobEnvironment& env, const FolderSandbox& sandbox = {});

class JobFolder {
 public:
  JobFolder() = default;  // none yet: root() is empty

  // Makes JobsFolder(env)/<prefix><random>/ and its subfolders (and BASE/data,
  // which jobs share). The jobs folders and the job's are 0700: what
  // programs leave is for this job alone. output/ and shared/ are open to
  // all, as programs may run as another user in their container.
  static Result<JobFolder> Create(const JobEnvironment& env, const std::string& prefix);

  const std::filesystem::path& root() const { return root_; }
  // Where the programs' folders are: root() itself, or the root of the
  // job's own filesystem (root()/work).
  const std::filesystem::path& work() const { return work_; }
  bool own_filesystem() const { return work_ != root_; }
  std::filesystem::path output() const { return work_ / "output"; }
  std::filesystem::path input() const { return work_ / "input"; }  // scoring: ref/ and res/
  std::filesystem::path logs() const { return root_ / "logs"; }
  std::filesystem::path bundles() const { return root_ / "bundles"; }  // the zips
  std::filesystem::path shared() const { return work_ / "shared"; }
  std::filesystem::path input_data() const { return work_ / "input_data"; }
  // Where a program's bundle is unpacked: program/ or ingestion_program/.
  std::filesystem::path program(ProgramKind kind) const {
    return work_ / (kind == ProgramKind::kIngestion ? "ingestion_program" : "program");
  }
  const std::filesystem::path& data() const { return data_; }  // BASE/data, read-only to programs

  // Every folder a program can write, for the output limit.
  std::vector<std::filesystem::path> Writable() const;

  // Removes `root` and all in it (its filesystem unmounted first). What the
  // worker's user may not remove (programs ran as root and left a `0700`
  // or read-only folder) goes through `sandbox` when it is usable. Whether
  // it is gone; a failure is logged.
  static bool Remove(const std::filesystem::path& root, const FolderSandbox& sandbox = {});

 private:
  // Mounts the job's own filesystem at root_/work; on failure the job's
  // folders stay in root_ (and are walked), with a warning.
  void MountOwnFilesystem(const JobEnvironment& env);

  std::filesystem::path root_;
  std::filesystem::path work_;
  std::filesystem::path data_;
};

}  // namespace cw
