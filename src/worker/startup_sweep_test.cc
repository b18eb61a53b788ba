#include "worker/startup_sweep.h"

#include <gtest/gtest.h>

#include "job/network_holders.h"
#include "job/test_fakes.h"
#include "storage/test_util.h"

namespace cw {
namespace {
using testing::FakeEngine;

std::string CreateContainer(FakeEngine& engine, std::map<std::string, std::string> labels) {
  ContainerSpec spec;
  spec.image = "img";
  spec.labels = std::move(labels);
  return *engine.Create(spec);
}

TEST(StartupSweep, RemovesTheNodesJobContainersThenItsNetworkHolders) {
  FakeEngine engine;
  engine.images.insert("img");
  const std::string holder = CreateContainer(engine, {{kLabelHolderNode, "w@a"}});
  const std::string job = CreateContainer(engine, {{"org.codabench.node", "w@a"}});
  const std::string other = CreateContainer(engine, {{"org.codabench.node", "w@b"}});
  RemoveOrphanContainers(engine, "w@a");
  EXPECT_EQ(engine.removed, (std::vector<std::string>{job, holder}));
  EXPECT_EQ(engine.live_containers(), 1u);  // w@b's stays
  (void)other;
}

class StartupSweepFolders : public testing_util::TempDirTest {};

TEST_F(StartupSweepFolders, RemovesLeftJobFoldersUnlessTheAdminKeepsThem) {
  FakeEngine engine;
  JobEnvironment env;
  env.base_dir = root_;
  env.jobs_subfolder = "w_a";
  WriteFile(JobsFolder(env) / "job-1-prediction-x" / "input" / "f", "data");
  env.keep_job_dir = true;
  EXPECT_EQ(RemoveOrphanJobFolders(env, engine, "w@a"), 0);
  EXPECT_TRUE(std::filesystem::exists(JobsFolder(env) / "job-1-prediction-x"));
  env.keep_job_dir = false;
  EXPECT_EQ(RemoveOrphanJobFolders(env, engine, "w@a"), 1);
  EXPECT_FALSE(std::filesystem::exists(JobsFolder(env) / "job-1-prediction-x"));
}

}  // namespace
}  // namespace cw
