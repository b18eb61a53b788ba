#include "engine/image_budget.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cw {
namespace {
namespace fs = std::filesystem;

// A store of images with sizes, as ListImages and ImageStoreBytes tell it;
// RemoveImage takes a name away (and the image with its last name).
class StoreEngine : public ContainerEngine {
 public:
  struct Image {
    std::vector<std::string> tags;
    long long bytes;
  };
  std::map<std::string, Image> images;  // by id
  std::vector<std::string> removed;
  // How the engine resolves a name a job used ("x:1" under Podman: "localhost/x:1").
  std::string local_prefix;

  Result<std::string> Version() override { return std::string("fake"); }
  Result<bool> ImageExists(const std::string&) override { return true; }
  Status PullImage(const std::string&, const PullProgressFn&) override { return Status::Ok(); }
  Result<std::string> Create(const ContainerSpec&) override { return std::string("c"); }
  Status StartAndStream(const std::string&, const OutputFn&, const std::function<void()>&) override {
    return Status::Ok();
  }
  Result<int> Wait(const std::string&, std::chrono::seconds) override { return 0; }
  Status Kill(const std::string&) override { return Status::Ok(); }
  Status Remove(const std::string&, bool) override { return Status::Ok(); }
  Result<std::vector<std::string>> ListByLabel(const std::string&, const std::string&) override {
    return std::vector<std::string>();
  }
  Result<std::vector<ImageInfo>> ListImages() override {
    std::vector<ImageInfo> out;
    for (const auto& [id, image] : images) {
      ImageInfo info;
      info.id = id;
      info.repo_tags = image.tags;
      info.size_bytes = image.bytes;
      out.push_back(info);
    }
    return out;
  }
  Result<long long> ImageStoreBytes() override {
    long long total = 0;
    for (const auto& [id, image] : images) total += image.bytes;
    return total;
  }
  Status RemoveImage(const std::string& name) override {
    for (auto it = images.begin(); it != images.end(); ++it) {
      auto& tags = it->second.tags;
      for (auto t = tags.begin(); t != tags.end(); ++t) {
        if (*t != name && *t != local_prefix + name) continue;
        removed.push_back(name);
        tags.erase(t);
        if (tags.empty()) images.erase(it);
        return Status::Ok();
      }
    }
    return NotFound("no image " + name);
  }
};

TEST(NormalizeImageName, TheFormTheEngineListsTagsIn) {
  EXPECT_EQ(NormalizeImageName("python:3.12"), "python:3.12");
  EXPECT_EQ(NormalizeImageName("python"), "python:latest");
  EXPECT_EQ(NormalizeImageName("docker.io/library/python:3.12"), "python:3.12");
  EXPECT_EQ(NormalizeImageName("docker.io/codalab/codalab-legacy:py37"),
            "codalab/codalab-legacy:py37");
  EXPECT_EQ(NormalizeImageName("localhost:5000/x/y"), "localhost:5000/x/y:latest");
}

class ImageBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("cw-budget-" + std::string(info->name()) + "-" +
                                        std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  long long clock_ = 1000;
};

TEST_F(ImageBudgetTest, UnderPodmanALocalImageNamedWithoutRegistryIsTheOneTheJobUsed) {
  // Podman lists the image a job named "team/model:1" as localhost/team/model:1.
  StoreEngine engine;
  engine.local_prefix = "localhost/";
  engine.images["sha256:old"] = {{"localhost/team/model:1"}, 600};
  engine.images["sha256:new"] = {{"localhost/team/model:2"}, 600};
  engine.images["sha256:admin"] = {{"localhost/admin/tool:1"}, 600};
  ImageBudget budget(engine, 1500, dir_ / "use.json", [this] { return clock_; }, /*podman=*/true);
  budget.Acquire("team/model:1");
  budget.Release("team/model:1");
  clock_ = 2000;
  budget.Acquire("team/model:2");
  budget.Release("team/model:2");
  auto swept = budget.Enforce();
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->removed, std::vector<std::string>{"team/model:1"});
  EXPECT_EQ(swept->before_bytes, 1800);
  EXPECT_EQ(swept->after_bytes, 1200);
  EXPECT_TRUE(engine.images.count("sha256:admin")) << "never used by a job: never removed";

  // One a job holds stays, under its listed name too.
  ImageBudget tight(engine, 1, dir_ / "use.json", [this] { return clock_; }, true);
  tight.Acquire("team/model:2");
  swept = tight.Enforce();
  ASSERT_TRUE(swept.ok());
  EXPECT_TRUE(swept->removed.empty());
  EXPECT_TRUE(engine.images.count("sha256:new"));
}

TEST_F(ImageBudgetTest, UnderDockerALocalhostRegistrysImageIsNotTheShortNamedOne) {
  // Docker: localhost/team/model:1 came from a registry on this host's port
  // 80, and is not the docker.io image a job named team/model:1.
  StoreEngine engine;
  engine.images["sha256:hub"] = {{"team/model:1"}, 600};
  engine.images["sha256:local"] = {{"localhost/team/model:1"}, 600};
  ImageBudget budget(engine, 1, dir_ / "use.json", [this] { return clock_; });
  budget.Acquire("team/model:1");
  budget.Release("team/model:1");
  auto swept = budget.Enforce();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->removed, std::vector<std::string>{"team/model:1"});
  EXPECT_FALSE(engine.images.count("sha256:hub"));
  EXPECT_TRUE(engine.images.count("sha256:local"));
}

}  // namespace
}  // namespace cw
