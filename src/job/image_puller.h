// The job's image, pulled on a thread of its own while the bundles download:
// they do not depend on each other, and a pull that finds the image up to
// date still costs a registry round trip or two. Per PullPolicy, the image
// is pulled, or only looked for; a local copy serves when the registry fails.
//
// Thread rules: construct, Finish and destroy on one thread (the job's).
// The pulling thread starts in the constructor and writes outcome_ and
// seconds_ alone; the owner reads them only after joining it (in Finish).
// stop_ is the one thing both touch while it runs (atomic). The destructor
// stops and joins a pull that Finish did not end, so an exception cannot
// leave the thread running.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "common/status.h"
#include "engine/engine.h"
#include "job/cancel.h"
#include "job/job_environment.h"
#include "report/progress.h"

namespace cw {

class ImagePuller {
 public:
  // `podman`: the engine is Podman, which files an image built or loaded on
  // this host under "localhost/" and, asked to pull its short name, tries a
  // registry at localhost for 3 s before it fails; such an image is not
  // pulled (no registry has it to give), whatever the policy.
  ImagePuller(ContainerEngine& engine, std::string image, PullPolicy policy,
              const ProgressDisplay& progress, const CancelToken& cancel, bool podman = false);
  ~ImagePuller();
  ImagePuller(const ImagePuller&) = delete;
  ImagePuller& operator=(const ImagePuller&) = delete;

  // Waits for the pull (stopping it first when `stop`: the job ends for
  // another reason, and Ok is returned), then decides: the image is there
  // (pulled or not), a local copy serves after a failed pull, or the job
  // fails: Cancelled, "Cannot reach the container engine: ...", or "Pull for
  // <image> failed: <the engine's reason>" (then refused() is true). Once.
  Status Finish(bool stop);

  // The image could not be had: Finish's message is the pull failure the
  // job reports (Docker_Image_Pull_Fail).
  bool refused() const { return refused_; }
  // How long the pull (or the look for the image) took; after Finish.
  double seconds() const { return seconds_; }

 private:
  void Pull();  // on thread_
  // Podman holds image_ as "localhost/<image_>" (image_ names no registry).
  bool LocalToPodman();  // on thread_

  ContainerEngine& engine_;
  const std::string image_;
  const PullPolicy policy_;
  const ProgressDisplay& progress_;
  const CancelToken& cancel_;
  const bool podman_;
  std::atomic<bool> stop_{false};
  // Written by thread_ only, read after its join.
  Result<bool> exists_ = false;  // was the image on this machine before the pull
  bool pulled_ = false;          // a pull was made
  Status status_;                // its result
  double seconds_ = 0;
  bool refused_ = false;         // owner's thread only
  std::thread thread_;           // last: starts once the members above are set
};

}  // namespace cw
