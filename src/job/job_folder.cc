#include "job/job_folder.h"

#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include <spdlog/spdlog.h>

#include "common/fd.h"
#include "common/files.h"
#include "job/job_filesystem.h"
#include "job/spare_job_folders.h"

namespace cw {
namespace fs = std::filesystem;

fs::path JobsFolder(const JobEnvironment& env) {
  fs::path jobs = env.base_dir / "jobs";
  return env.jobs_subfolder.empty() ? jobs : jobs / env.jobs_subfolder;
}

int RemoveLeftoverJobFolders(const JobEnvironment& env, const FolderSandbox& sandbox) {
  const fs::path jobs = JobsFolder(env);
  // Their filesystems first, or removing would empty them file by file.
  UnmountUnder(jobs);
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(jobs, ec), end; !ec && it != end; it.increment(ec)) {
    if (JobFolder::Remove(it->path(), sandbox)) ++removed;
  }
  return removed;
}

Result<JobFolder> JobFolder::Create(const JobEnvironment& env, const std::string& prefix) {
  JobFolder f;
  CW_ASSIGN_OR_RETURN(f.root_, MakeUniqueDir(JobsFolder(env), prefix));
  f.work_ = f.root_;
  f.data_ = env.base_dir / "data";
  const bool own_filesystem = env.limits.job_filesystem && env.limits.max_output_bytes > 0;
  if (own_filesystem && env.spare_folders) {
    // One made ahead, filesystem mounted: it takes the job's name (over the
    // empty folder just made; the mount moves with it).
    fs::path spare = env.spare_folders->Take();
    if (!spare.empty()) {
      if (::rename(spare.c_str(), f.root_.c_str()) == 0) {
        f.work_ = f.root_ / "work";
      } else {
        spdlog::warn("cannot rename spare job folder {} to {}: {}", spare.string(),
                     f.root_.string(), ErrnoText(errno));
        Remove(spare);
      }
    }
  }
  // What programs leave (a set-uid binary, a participant's data) is for this
  // job alone: no other user of the host may reach into the jobs folder. The
  // engine mounts the folders below by path, so programs do not need these
  // to be open.
  for (const fs::path& d : {env.base_dir / "jobs", JobsFolder(env), f.root_}) {
    if (::chmod(d.c_str(), 0700) != 0) {
      return IoError("cannot make " + d.string() + " private: " + ErrnoText(errno));
    }
  }
  if (own_filesystem && !f.own_filesystem()) f.MountOwnFilesystem(env);
  std::error_code ec;
  for (const fs::path& d : {f.output(), f.input(), f.logs(), f.bundles(), f.shared(), f.data_}) {
    fs::create_directories(d, ec);
    if (ec) return IoError("cannot create " + d.string() + ": " + ec.message());
  }
  // Programs in the container may run as another user; they must be able to
  // write their output.
  for (const fs::path& d : {f.output(), f.shared()}) {
    fs::permissions(d, fs::perms::all, ec);
  }
  return f;
}

void JobFolder::MountOwnFilesystem(const JobEnvironment& env) {
  const fs::path work = root_ / "work";
  Status mounted = MountJobWork(root_, env.limits);
  if (!mounted.ok()) {
    UnmountUnder(work);
    spdlog::warn("{}: no filesystem of its own for this job, its folders are walked instead: {}",
                 root_.filename().string(), mounted.message());
    return;
  }
  if (::chmod(work.c_str(), 0700) != 0) {
    spdlog::warn("cannot make {} private: {}", work.string(), ErrnoText(errno));
  }
  work_ = work;
}

std::vector<fs::path> JobFolder::Writable() const {
  // What was unpacked or copied into them before the start is not the
  // programs' doing: the disk watcher subtracts it.
  std::vector<fs::path> dirs;
  for (const char* d : {"output", "shared", "program", "ingestion_program", "input",
                        "input_data"}) {
    dirs.push_back(work_ / d);
  }
  return dirs;
}

bool JobFolder::Remove(const fs::path& root, const FolderSandbox& sandbox) {
  UnmountUnder(root);
  std::error_code ec;
  fs::remove_all(root, ec);
  if (!ec) return true;
  if (!sandbox.usable()) {
    spdlog::warn("could not remove job folder {}: {}", root.string(), ec.message());
    return false;
  }
  // Programs ran as root in their containers; the worker's user may not
  // remove what they left: root in a container of the worker's own image may.
  auto emptied = RunSandbox(sandbox, "remove", root);
  std::error_code again;
  if (emptied.ok()) fs::remove_all(root, again);
  if (!emptied.ok() || again) {
    spdlog::warn("could not remove job folder {}: {} ({})", root.string(), ec.message(),
                 emptied.ok() ? again.message() : emptied.status().message());
    return false;
  }
  return true;
}

}  // namespace cw
