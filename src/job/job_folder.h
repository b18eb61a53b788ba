// A job's folder on the host: BASE/jobs/[<node>/]job-<id>-<stage>-<random>/,
// private to the worker's user, with the subfolders the programs see
// (docs/design.md, "The pipeline"), and the sweep of the folders a killed
// run left.
//
// Thread rules: a JobFolder is a value, fixed once Create returns; any
// thread may read it. Nothing here locks.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "job/job_environment.h"
#include "report/reporter.h"

namespace cw {

// BASE/jobs/<subfolder>: where `env`'s jobs get their folders.
std::filesystem::path JobsFolder(const JobEnvironment& env);

// Removes the job folders a killed run left under JobsFolder(env); returns
// how many. Only for a worker that knows no job of its own runs there.
int RemoveLeftoverJobFolders(const JobEnvironment& env);

class JobFolder {
 public:
  JobFolder() = default;  // none yet: root() is empty

  // Makes JobsFolder(env)/<prefix><random>/ and its subfolders (and BASE/data,
  // which jobs share). The jobs folders and the job's are 0700: what
  // programs leave is for this job alone. output/ and shared/ are open to
  // all, as programs may run as another user in their container.
  static Result<JobFolder> Create(const JobEnvironment& env, const std::string& prefix);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path output() const { return root_ / "output"; }
  std::filesystem::path input() const { return root_ / "input"; }  // scoring: ref/ and res/
  std::filesystem::path logs() const { return root_ / "logs"; }
  std::filesystem::path bundles() const { return root_ / "bundles"; }  // the zips
  std::filesystem::path shared() const { return root_ / "shared"; }
  std::filesystem::path input_data() const { return root_ / "input_data"; }
  // Where a program's bundle is unpacked: program/ or ingestion_program/.
  std::filesystem::path program(ProgramKind kind) const {
    return root_ / (kind == ProgramKind::kIngestion ? "ingestion_program" : "program");
  }
  const std::filesystem::path& data() const { return data_; }  // BASE/data, read-only to programs

  // Every folder a program can write, for the output limit.
  std::vector<std::filesystem::path> Writable() const;

  // Removes `root` and all in it; a failure is logged, not returned.
  static void Remove(const std::filesystem::path& root);

 private:
  std::filesystem::path root_;
  std::filesystem::path data_;
};

}  // namespace cw
