#include "job/image_puller.h"

#include <chrono>
#include <exception>

#include <spdlog/spdlog.h>

#include "common/abandon.h"
#include "common/log.h"
#include "engine/image_ref.h"

namespace cw {
using Clock = std::chrono::steady_clock;

ImagePuller::ImagePuller(ContainerEngine& engine, std::string image, PullPolicy policy,
                         const ProgressDisplay& progress, const CancelToken& cancel,
                         bool podman)
    : engine_(engine), image_(std::move(image)), policy_(policy), progress_(progress),
      cancel_(cancel), podman_(podman) {
  const LogFields fields = CurrentLogFields();
  thread_ = std::thread([this, fields] {
    ScopedLogFields scoped(fields);
    // Ends the engine's pull call within about a second of a cancel or of a
    // failed download.
    AbandonScope abandon([this] { return stop_.load() || cancel_.cancelled(); });
    auto t0 = Clock::now();
    try {
      Pull();
    } catch (const std::exception& e) {
      status_ = Internal(std::string("the image pull stopped: ") + e.what());
    } catch (...) {  // nothing may leave a thread of ours: it would end the process
      status_ = Internal("the image pull stopped: an unknown exception");
    }
    seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
  });
}

ImagePuller::~ImagePuller() {
  if (thread_.joinable()) {  // an exception left the job before Finish
    stop_ = true;
    thread_.join();
  }
}

void ImagePuller::Pull() {
  exists_ = engine_.ImageExists(image_);
  if (!exists_.ok()) return;
  pulled_ = policy_ == PullPolicy::kAlways || (policy_ == PullPolicy::kMissing && !*exists_);
  if (pulled_ && *exists_ && LocalToPodman()) {
    spdlog::info("image {} is this host's own (Podman's localhost/{}): not pulled", image_,
                 image_);
    pulled_ = false;
  }
  if (!pulled_) return;
  spdlog::info("pulling image {}", image_);
  TransferProgress shown(progress_, "pulling image " + image_);
  PullTally tally;
  PullProgressFn progress;
  if (progress_.enabled()) {
    progress = [&shown, &tally](const PullProgress& p) {
      try {
        tally.Add(p);
        shown.Update(tally.done(), tally.total(), tally.total_partial(), tally.Detail());
      } catch (...) {
        // A pull goes on whatever its display does.
      }
    };
  }
  status_ = engine_.PullImage(image_, progress);
  shown.Finish(status_.ok());
}

bool ImagePuller::LocalToPodman() {
  if (!podman_) return false;
  Result<ImageRef> ref = ParseImageRef(image_);
  if (!ref.ok() || ref->NamesRegistry()) return false;
  Result<bool> local = engine_.ImageExists(std::string(kPodmanLocalPrefix) + ref->ToString());
  return local.ok() && *local;
}

Status ImagePuller::Finish(bool stop) {
  if (stop) stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (stop) return Status::Ok();  // the job ends for another reason
  if (cancel_.cancelled()) return Cancelled(cancel_.reason());
  if (!exists_.ok()) return exists_.status().Prefixed("Cannot reach the container engine");
  const bool exists = *exists_;
  if (status_.ok() && (pulled_ || exists)) return Status::Ok();
  if (!status_.ok() && exists) {
    spdlog::warn("pull of {} failed ({}); using the copy already on this machine", image_,
                 status_.message());
    return Status::Ok();
  }
  std::string reason = status_.ok() ? "the image is not on this machine and pulling is off"
                                    : status_.message();
  // The engine's reason, without the "pulling image <image>: " it comes with.
  if (const std::string said = "pulling image " + image_ + ": "; reason.rfind(said, 0) == 0) {
    reason.erase(0, said.size());
  }
  refused_ = true;
  return Status(status_.ok() ? Code::kNotFound : status_.code(),
                "Pull for " + image_ + " failed: " + reason);
}

}  // namespace cw
