#include "job/image_puller.h"

#include <atomic>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/abandon.h"
#include "job/test_fakes.h"

namespace cw {
namespace {
using testing::FakeEngine;

constexpr const char* kImage = "codalab/codalab-legacy:py37";

class ImagePullerTest : public ::testing::Test {
 protected:
  Status Pull(PullPolicy policy, bool stop = false) {
    ImagePuller puller(engine_, kImage, policy, display_, cancel_);
    Status st = puller.Finish(stop);
    refused_ = puller.refused();
    return st;
  }
  FakeEngine engine_;
  ProgressDisplay display_;
  CancelToken cancel_;
  bool refused_ = false;
};

TEST_F(ImagePullerTest, PullsPerPolicy) {
  EXPECT_TRUE(Pull(PullPolicy::kAlways).ok());
  EXPECT_EQ(engine_.pulled.size(), 1u);
  EXPECT_TRUE(Pull(PullPolicy::kMissing).ok());  // now present: not pulled again
  EXPECT_EQ(engine_.pulled.size(), 1u);
  EXPECT_TRUE(Pull(PullPolicy::kNever).ok());
  EXPECT_EQ(engine_.pulled.size(), 1u);
}

TEST_F(ImagePullerTest, UnderPodmanAnImageOfThisHostsOwnIsNotPulled) {
  // Podman files a loaded or built "team/model:1" as localhost/team/model:1,
  // and a pull of the short name would knock on a registry at localhost.
  const std::string local = "team/model:1";
  engine_.images = {local, "localhost/" + local};
  auto pull = [&](const std::string& image, bool podman) {
    ImagePuller puller(engine_, image, PullPolicy::kAlways, display_, cancel_, podman);
    return puller.Finish(false);
  };
  EXPECT_TRUE(pull(local, /*podman=*/true).ok());
  EXPECT_TRUE(engine_.pulled.empty());
  // Docker has no such rule: "Always" pulls.
  EXPECT_TRUE(pull(local, false).ok());
  EXPECT_EQ(engine_.pulled.size(), 1u);
  // A registry's image, or one Podman holds under its registry's name, is pulled.
  engine_.images.insert("ghcr.io/team/model:1");
  EXPECT_TRUE(pull("ghcr.io/team/model:1", true).ok());
  EXPECT_TRUE(pull(kImage, true).ok());
  EXPECT_EQ(engine_.pulled.size(), 3u);
}

TEST_F(ImagePullerTest, ALocalCopyServesWhenTheRegistryFails) {
  engine_.images.insert(kImage);
  engine_.pull_status = Unavailable("registry unreachable");
  EXPECT_TRUE(Pull(PullPolicy::kAlways).ok());
  EXPECT_FALSE(refused_);
  EXPECT_EQ(engine_.pulled.size(), 1u);
}

TEST_F(ImagePullerTest, WithoutALocalCopyTheEnginesReasonIsTheFailure) {
  engine_.pull_status = NotFound(std::string("pulling image ") + kImage +
                                 ": pull access denied for codalab");
  Status st = Pull(PullPolicy::kAlways);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), std::string("Pull for ") + kImage +
                              " failed: pull access denied for codalab");
  EXPECT_TRUE(refused_);
}

TEST_F(ImagePullerTest, NeverWithoutTheImageFails) {
  Status st = Pull(PullPolicy::kNever);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_THAT(st.message(), ::testing::HasSubstr("the image is not on this machine and pulling is off"));
  EXPECT_TRUE(refused_);
  EXPECT_TRUE(engine_.pulled.empty());
}

TEST_F(ImagePullerTest, AStopAbandonsThePullAndIsNoFailure) {
  std::atomic<bool> abandoned{false};
  engine_.pull_status = Unavailable("gave up");
  engine_.pull_hook = [&] {
    for (int i = 0; i < 1000 && !AbandonScope::Abandoned(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    abandoned = AbandonScope::Abandoned();
  };
  EXPECT_TRUE(Pull(PullPolicy::kAlways, /*stop=*/true).ok());
  EXPECT_FALSE(refused_);
  EXPECT_TRUE(abandoned);
}

TEST_F(ImagePullerTest, ACancelIsTheResultAndTheDestructorJoins) {
  cancel_.Cancel("revoked");
  EXPECT_EQ(Pull(PullPolicy::kAlways).code(), Code::kCancelled);
  {
    ImagePuller unfinished(engine_, kImage, PullPolicy::kAlways, display_, cancel_);
  }  // joins without Finish
}

}  // namespace
}  // namespace cw
