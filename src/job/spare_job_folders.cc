#include "job/spare_job_folders.h"

#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include "common/fd.h"
#include "common/files.h"
#include "job/job_filesystem.h"
#include "job/job_folder.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

// Never used by a program: the worker's user removes all of it.
void RemoveSpare(const fs::path& root) { JobFolder::Remove(root); }

}  // namespace

SpareJobFolders::SpareJobFolders(fs::path jobs, JobLimits limits, int spares)
    : jobs_(std::move(jobs)),
      limits_(limits),
      pool_("a job folder", spares, [this] { return Make(); }, RemoveSpare) {}

SpareJobFolders::~SpareJobFolders() = default;

Result<fs::path> SpareJobFolders::Make() const {
  std::error_code ec;
  fs::create_directories(jobs_, ec);
  if (ec) return IoError("cannot create " + jobs_.string() + ": " + ec.message());
  CW_ASSIGN_OR_RETURN(fs::path root, MakeUniqueDir(jobs_, "spare-"));
  Status made = [&]() -> Status {
    if (::chmod(root.c_str(), 0700) != 0) {
      return IoError("cannot make " + root.string() + " private: " + ErrnoText(errno));
    }
    CW_RETURN_IF_ERROR(MountJobWork(root, limits_));
    const fs::path work = root / "work";
    if (::chmod(work.c_str(), 0700) != 0) {
      return IoError("cannot make " + work.string() + " private: " + ErrnoText(errno));
    }
    return Status::Ok();
  }();
  if (!made.ok()) {
    RemoveSpare(root);
    return made;
  }
  return root;
}

void SpareJobFolders::Prepare() { pool_.Prepare(); }

std::size_t SpareJobFolders::ready() const { return pool_.ready(); }

fs::path SpareJobFolders::Take() {
  std::optional<fs::path> root = pool_.Take();
  pool_.Prepare();
  return root.value_or(fs::path());
}

}  // namespace cw
