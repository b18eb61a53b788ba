#include "job/spare_job_folders.h"

#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include <spdlog/spdlog.h>

#include "common/fd.h"
#include "common/files.h"
#include "job/job_filesystem.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

void RemoveSpare(const fs::path& root) {
  UnmountUnder(root);
  std::error_code ec;
  fs::remove_all(root, ec);
  if (ec) spdlog::warn("could not remove spare job folder {}: {}", root.string(), ec.message());
}

}  // namespace

SpareJobFolders::SpareJobFolders(fs::path jobs, JobLimits limits, int spares)
    : jobs_(std::move(jobs)), limits_(limits), spares_(spares), executor_("spare job folders") {}

SpareJobFolders::~SpareJobFolders() {
  executor_.Shutdown(SerialExecutor::Leftovers::kDrop);
  std::deque<fs::path> left;
  {
    MutexLock lock(mu_);
    left.swap(ready_);
  }
  for (const fs::path& root : left) RemoveSpare(root);
}

Result<fs::path> SpareJobFolders::Make() const {
  std::error_code ec;
  fs::create_directories(jobs_, ec);
  if (ec) return IoError("cannot create " + jobs_.string() + ": " + ec.message());
  CW_ASSIGN_OR_RETURN(fs::path root, MakeUniqueDir(jobs_, "spare-"));
  Status made = [&]() -> Status {
    if (::chmod(root.c_str(), 0700) != 0) {
      return IoError("cannot make " + root.string() + " private: " + ErrnoText(errno));
    }
    auto free = FreeBytesOn(root);
    const fs::path work = root / "work";
    CW_RETURN_IF_ERROR(MountJobFilesystem(root / "work.img", work,
                                          JobFilesystemBytes(limits_, free.ok() ? *free : 0)));
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

void SpareJobFolders::Refill() {
  for (;;) {
    {
      MutexLock lock(mu_);
      if (static_cast<int>(ready_.size()) >= spares_) return;
    }
    Result<fs::path> root = Make();
    MutexLock lock(mu_);
    if (!root.ok()) {
      // Each job then makes its own, the usual way (which says why it fails).
      if (!failing_) spdlog::warn("cannot make a job folder ahead: {}", root.status().message());
      failing_ = true;
      return;
    }
    failing_ = false;
    ready_.push_back(*root);
  }
}

void SpareJobFolders::Prepare() {
  (void)executor_.Post([this] { Refill(); });  // refused only while shutting down
}

std::size_t SpareJobFolders::ready() const {
  MutexLock lock(mu_);
  return ready_.size();
}

fs::path SpareJobFolders::Take() {
  fs::path root;
  {
    MutexLock lock(mu_);
    if (!ready_.empty()) {
      root = ready_.front();
      ready_.pop_front();
    }
  }
  Prepare();
  return root;
}

}  // namespace cw
