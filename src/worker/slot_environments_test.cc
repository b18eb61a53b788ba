#include "worker/slot_environments.h"

#include <gtest/gtest.h>

#include "job/network_holders.h"
#include "job/test_fakes.h"
#include "sandbox/sandbox_image.h"

namespace cw {
namespace {
using testing::FakeEngine;
using testing::FakeGpuMeter;

std::vector<WorkerSlot> TwoSlots() {
  std::vector<WorkerSlot> slots(2);
  slots[0].options.cpuset_cpus = "0-3";
  slots[0].options.network = "codabench-jobs";
  slots[0].labels = {{kLabelSlot, "0"}, {kLabelGpus, "GPU-a"}};
  slots[1].options.cpuset_cpus = "4-7";
  slots[1].options.network_disabled = true;
  slots[1].labels = {{kLabelSlot, "1"}};
  return slots;
}

TEST(SlotEnvironments, EachSlotGetsItsOwnOptionsLabelsAndMeter) {
  FakeEngine engine;
  JobEnvironment base;
  base.labels["org.codabench.node"] = "w@a";
  GpuFigures figures;
  figures.meters = {std::make_shared<FakeGpuMeter>(), nullptr};
  base.sandbox_image = "localhost/codabench-worker/sandbox:0123456789ab";
  auto envs = SlotEnvironments(base, TwoSlots(), figures, /*network_holders=*/true, engine, "w@a");
  ASSERT_EQ(envs.size(), 2u);
  EXPECT_EQ(envs[0].container.cpuset_cpus, "0-3");
  EXPECT_EQ(envs[1].container.cpuset_cpus, "4-7");
  EXPECT_EQ(envs[0].labels.at("org.codabench.node"), "w@a");
  EXPECT_EQ(envs[0].labels.at(kLabelGpus), "GPU-a");
  EXPECT_EQ(envs[1].labels.at(kLabelSlot), "1");
  EXPECT_FALSE(envs[1].labels.count(kLabelGpus));
  EXPECT_EQ(envs[0].gpu_usage, figures.meters[0]);
  EXPECT_EQ(envs[1].gpu_usage, nullptr);
  // On the worker's network, made for it; none for the slot without one.
  EXPECT_EQ(envs[0].container.network, "codabench-jobs");
  EXPECT_EQ(envs[1].container.network, "");
  EXPECT_EQ(engine.networks, std::vector<std::string>{"codabench-jobs"});
  // A slot without network needs no holders.
  EXPECT_NE(envs[0].network_holders, nullptr);
  EXPECT_EQ(envs[1].network_holders, nullptr);
  EXPECT_EQ(SlotEnvironments(base, TwoSlots(), figures, false, engine, "w@a")[0].network_holders,
            nullptr);
  // Nor one whose engine could not load the worker's image.
  base.sandbox_image.clear();
  EXPECT_EQ(SlotEnvironments(base, TwoSlots(), figures, true, engine, "w@a")[0].network_holders,
            nullptr);
}

TEST(SlotEnvironments, PrepareEngineLoadsTheWorkersImageOnce) {
  FakeEngine engine;
  JobEnvironment env = BaseJobEnvironment(WorkerConfig(), "/base", "/host");
  PrepareEngine(env, engine);
  EXPECT_EQ(env.sandbox_image, SandboxImageReference());
  EXPECT_EQ(engine.imported, std::vector<std::string>{SandboxImageReference()});
  PrepareEngine(env, engine);
  EXPECT_EQ(engine.imported.size(), 1u) << "loaded once: the engine has it now";
}

// Podman 4 drops GPU requests through its Docker API without a word: the
// worker refuses to start rather than run every program without its GPUs.
TEST(SlotEnvironments, AnEngineThatDropsGpuRequestsIsFoundBeforeAnyJob) {
  FakeEngine engine;
  JobEnvironment env = BaseJobEnvironment(WorkerConfig(), "/base", "/host");
  PrepareEngine(env, engine);
  const std::map<std::string, std::string> labels = {{kLabelHolderNode, "n1"}};
  std::vector<DeviceRequest> gpus(1);
  gpus[0].driver = "cdi";
  gpus[0].device_ids = {"nvidia.com/gpu=0"};

  EXPECT_TRUE(CheckGpuRequestsKept(env.sandbox_image, gpus, labels, engine).ok())
      << "the engine kept them";
  ASSERT_EQ(engine.created.size(), 1u);
  EXPECT_EQ(engine.created[0].device_requests.size(), 1u);
  EXPECT_EQ(engine.created[0].image, env.sandbox_image);
  EXPECT_EQ(engine.created[0].labels, labels);
  EXPECT_EQ(engine.live_containers(), 0u) << "made, never started, removed";

  engine.drops_device_requests = true;
  Status dropped = CheckGpuRequestsKept(env.sandbox_image, gpus, labels, engine);
  EXPECT_EQ(dropped.code(), Code::kInvalidInput);
  EXPECT_NE(dropped.message().find("drops GPU requests"), std::string::npos) << dropped.message();
  EXPECT_NE(dropped.message().find("Podman"), std::string::npos) << dropped.message();
  EXPECT_EQ(engine.live_containers(), 0u);

  // No GPUs asked for: nothing to look at.
  EXPECT_TRUE(CheckGpuRequestsKept(env.sandbox_image, {}, labels, engine).ok());
  EXPECT_EQ(engine.created.size(), 2u);
}

TEST(SlotEnvironments, TheQueueWorkersEnvironmentIsUnderItsNodeAndCleansUpAfterTheAck) {
  FakeEngine engine;
  WorkerConfig config;
  config.base_directory = "/base";
  config.host_directory = "/host";
  JobEnvironment env = QueueJobEnvironment(config, "compute-worker@box", engine, nullptr);
  EXPECT_EQ(env.base_dir, "/base");
  EXPECT_EQ(env.host_dir, "/host");
  EXPECT_FALSE(env.hostname.empty());
  EXPECT_TRUE(env.defer_cleanup);
  EXPECT_EQ(env.labels.at("org.codabench.node"), "compute-worker@box");
  EXPECT_FALSE(env.jobs_subfolder.empty());
  EXPECT_EQ(env.images, nullptr);  // MAX_IMAGE_STORE_GB unset
  EXPECT_TRUE(env.rewrite_url);
}

}  // namespace
}  // namespace cw
