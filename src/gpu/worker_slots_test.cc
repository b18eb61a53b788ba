#include "gpu/worker_slots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gpu/container_options.h"
#include "gpu/test_gpus.h"

namespace cw {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Result<std::vector<GpuInfo>> Gpus(std::vector<GpuInfo> g) { return g; }

std::string VisibleDevices(const WorkerSlot& s) {
  for (const std::string& e : s.options.env) {
    if (e.rfind("NVIDIA_VISIBLE_DEVICES=", 0) == 0) return e.substr(23);
  }
  return "(unset)";
}

TEST(PlanWorkerSlots, CpuWorkerDefaultsToOneUnpinnedSlot) {
  WorkerConfig c;
  auto slots = PlanWorkerSlots(c, Gpus(testing::EightH100()), 16, nullptr);
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  ASSERT_EQ(slots->size(), 1u);
  const WorkerSlot& s = (*slots)[0];
  EXPECT_TRUE(s.plan.gpus.empty());  // USE_GPU off: GPUs on the box are not handed out
  EXPECT_THAT(s.options.device_requests, IsEmpty());
  EXPECT_EQ(s.options.cpuset_cpus, "");
  EXPECT_THAT(s.options.env, IsEmpty());  // no NVIDIA_VISIBLE_DEVICES games for CPU workers
  EXPECT_EQ(s.labels.at(kLabelSlot), "0");
  EXPECT_FALSE(s.labels.count(kLabelGpus));
}

TEST(PlanWorkerSlots, CpuSlotsSplitTheEnginesCpus) {
  WorkerConfig c;
  c.worker_slots = "4";
  auto slots = PlanWorkerSlots(c, Gpus({}), 16, nullptr);
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 4u);
  EXPECT_EQ((*slots)[0].options.cpuset_cpus, "0-3");
  EXPECT_EQ((*slots)[3].options.cpuset_cpus, "12-15");
  EXPECT_EQ((*slots)[3].labels.at(kLabelSlot), "3");

  c.split_cpus = "False";
  slots = PlanWorkerSlots(c, Gpus({}), 16, nullptr);
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ((*slots)[3].options.cpuset_cpus, "");
}

TEST(PlanWorkerSlots, UseGpuAloneGivesOneSlotWithEveryGpuAsThePythonWorker) {
  WorkerConfig c;
  c.use_gpu = true;
  auto slots = PlanWorkerSlots(c, Gpus(testing::EightH100()), 64, nullptr);
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  ASSERT_EQ(slots->size(), 1u);
  const WorkerSlot& s = (*slots)[0];
  EXPECT_EQ(s.plan.gpus.size(), 8u);
  ASSERT_EQ(s.options.device_requests.size(), 1u);
  EXPECT_EQ(s.options.device_requests[0].driver, "cdi");  // Codabench's way by default
  EXPECT_EQ(s.options.device_requests[0].device_ids.size(), 8u);
  EXPECT_EQ(s.options.device_requests[0].device_ids[0], "nvidia.com/gpu=" + testing::FakeUuid(0));
  EXPECT_EQ(s.options.cpuset_cpus, "");
}

TEST(PlanWorkerSlots, EightGpusOnePerSlotWithTheForksOptions) {
  WorkerConfig c;
  c.gpus_per_slot = "1";
  c.gpu_driver = "nvidia";
  c.container_ipc = "host";
  c.extra_mounts = "/srv/eval:/eval-program:ro";
  std::vector<std::string> notes;
  auto slots = PlanWorkerSlots(c, Gpus(testing::EightH100()), 64, &notes);
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  ASSERT_EQ(slots->size(), 8u);
  for (int i = 0; i < 8; ++i) {
    const WorkerSlot& s = (*slots)[i];
    ASSERT_EQ(s.options.device_requests.size(), 1u);
    EXPECT_EQ(s.options.device_requests[0].driver, "nvidia");
    EXPECT_THAT(s.options.device_requests[0].device_ids, ElementsAre(testing::FakeUuid(i)));
    EXPECT_EQ(VisibleDevices(s), testing::FakeUuid(i));
    EXPECT_EQ(s.labels.at(kLabelGpus), testing::FakeUuid(i));
    EXPECT_EQ(s.options.cpuset_cpus, std::to_string(8 * i) + "-" + std::to_string(8 * i + 7));
    EXPECT_EQ(s.options.ipc_mode, "host");
    ASSERT_EQ(s.options.extra_mounts.size(), 1u);
    EXPECT_EQ(s.options.extra_mounts[0].host_path, "/srv/eval");
    EXPECT_TRUE(s.options.extra_mounts[0].read_only);
  }
  EXPECT_THAT(notes, IsEmpty());
}

TEST(PlanWorkerSlots, AutoSlotsAndExplicitMaps) {
  WorkerConfig c;
  c.use_gpu = true;
  c.worker_slots = "auto";
  auto slots = PlanWorkerSlots(c, Gpus(testing::TwoGpuBox()), 8, nullptr);
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(slots->size(), 2u);

  c.worker_slots.clear();
  c.gpu_map = "1;0";
  slots = PlanWorkerSlots(c, Gpus(testing::TwoGpuBox()), 8, nullptr);
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  ASSERT_EQ(slots->size(), 2u);
  EXPECT_EQ((*slots)[0].plan.gpus[0].index, 1);
  EXPECT_EQ(VisibleDevices((*slots)[0]), "GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111");
}

TEST(PlanWorkerSlots, UseGpuWithoutVisibleGpusFallsBackToGpuDevice) {
  WorkerConfig c;
  c.use_gpu = true;
  c.worker_slots = "2";
  std::vector<std::string> notes;
  auto slots = PlanWorkerSlots(c, Gpus({}), 8, &notes);
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  ASSERT_EQ(slots->size(), 2u);
  for (const WorkerSlot& s : *slots) {
    ASSERT_EQ(s.options.device_requests.size(), 1u);
    EXPECT_THAT(s.options.device_requests[0].device_ids, ElementsAre("nvidia.com/gpu=all"));
    EXPECT_THAT(s.options.env, IsEmpty());
  }
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("no GPUs seen"));

  c.gpu_driver = "nvidia";  // the same through Docker's --gpus all
  slots = PlanWorkerSlots(c, Gpus({}), 8, nullptr);
  ASSERT_TRUE(slots.ok());
  const DeviceRequest& r = (*slots)[0].options.device_requests.at(0);
  EXPECT_EQ(r.driver, "nvidia");
  EXPECT_EQ(r.count, -1);
  EXPECT_THAT(r.device_ids, IsEmpty());
}

TEST(PlanWorkerSlots, SplittingGpusThatCannotBeSeenIsRefused) {
  WorkerConfig c;
  c.gpus_per_slot = "1";
  auto slots = PlanWorkerSlots(c, Gpus({}), 8, nullptr);
  ASSERT_FALSE(slots.ok());
  EXPECT_THAT(slots.status().message(), HasSubstr("sees no GPUs"));
}

TEST(PlanWorkerSlots, BrokenDiscoveryStopsAGpuWorkerButNotACpuWorker) {
  Result<std::vector<GpuInfo>> broken = Unavailable("NVML: driver/library version mismatch");
  WorkerConfig c;
  EXPECT_TRUE(PlanWorkerSlots(c, broken, 8, nullptr).ok());
  c.use_gpu = true;
  auto slots = PlanWorkerSlots(c, broken, 8, nullptr);
  ASSERT_FALSE(slots.ok());
  EXPECT_THAT(slots.status().message(), HasSubstr("version mismatch"));
  EXPECT_THAT(slots.status().message(), HasSubstr("USE_GPU=False"));
}

TEST(PlanWorkerSlots, CustomGpuDeviceIsUsedAsWritten) {
  WorkerConfig c;
  c.use_gpu = true;
  c.gpu_device = "nvidia.com/gpu=1";
  auto slots = PlanWorkerSlots(c, Gpus(testing::TwoGpuBox()), 8, nullptr);
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 1u);
  EXPECT_THAT((*slots)[0].options.device_requests.at(0).device_ids, ElementsAre("nvidia.com/gpu=1"));
}

TEST(PlanWorkerSlots, BadSettingsNameTheSettingAndTheOption) {
  struct Case {
    void (*set)(WorkerConfig&);
    const char* expect;
  } cases[] = {
      {[](WorkerConfig& c) { c.worker_slots = "many"; }, "WORKER_SLOTS (--slots)"},
      {[](WorkerConfig& c) { c.worker_slots = "0"; }, "WORKER_SLOTS (--slots)"},
      {[](WorkerConfig& c) { c.gpus_per_slot = "x"; }, "GPUS_PER_SLOT (--gpus-per-slot)"},
      {[](WorkerConfig& c) { c.gpu_driver = "amd"; }, "GPU_DRIVER (--gpu-driver)"},
      {[](WorkerConfig& c) { c.container_ipc = "hots"; }, "CONTAINER_IPC (--ipc)"},
      {[](WorkerConfig& c) { c.container_shm_size = "lots"; }, "CONTAINER_SHM_SIZE (--shm-size)"},
      {[](WorkerConfig& c) { c.container_memory = "1k"; }, "CONTAINER_MEMORY (--memory)"},
      {[](WorkerConfig& c) { c.container_cpus = "-1"; }, "CONTAINER_CPUS (--cpus)"},
      {[](WorkerConfig& c) { c.extra_mounts = "/a:/b,relative:/c"; }, "EXTRA_MOUNTS (--mount)"},
  };
  for (const Case& k : cases) {
    WorkerConfig c;
    k.set(c);
    auto slots = PlanWorkerSlots(c, Gpus({}), 8, nullptr);
    ASSERT_FALSE(slots.ok()) << k.expect;
    EXPECT_THAT(slots.status().message(), HasSubstr(k.expect));
  }
}

TEST(ContainerOptionsFromConfig, ParsesTheAdminsLimits) {
  WorkerConfig c;
  c.container_shm_size = "16g";
  c.container_memory = "64GiB";
  c.container_cpus = "7.5";
  c.extra_mounts = "/data:/data:ro, /models:/models";
  auto o = ContainerOptionsFromConfig(c);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->shm_size_bytes, 16LL << 30);
  EXPECT_EQ(o->memory_bytes, 64LL << 30);
  EXPECT_DOUBLE_EQ(o->nano_cpus, 7.5);
  ASSERT_EQ(o->extra_mounts.size(), 2u);
  EXPECT_TRUE(o->extra_mounts[0].read_only);
  EXPECT_FALSE(o->extra_mounts[1].read_only);
  EXPECT_EQ(o->extra_mounts[1].container_path, "/models");
}

}  // namespace
}  // namespace cw
