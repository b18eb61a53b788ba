#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gpu/slots.h"
#include "gpu/test_gpus.h"

namespace cw {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

SlotPlan TwoGpuSlot() { return SlotPlan{1, testing::TwoGpuBox(), "8-15"}; }

TEST(DeviceRequestsFor, NvidiaDriverNamesUuidsWithTheGpuCapability) {
  auto reqs = DeviceRequestsFor(TwoGpuSlot(), GpuDriverMode::kNvidia);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].driver, "nvidia");
  EXPECT_THAT(reqs[0].device_ids, ElementsAre("GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000",
                                              "GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111"));
  EXPECT_THAT(reqs[0].capabilities, ElementsAre(ElementsAre("gpu")));
  EXPECT_EQ(reqs[0].count, 0);
}

TEST(DeviceRequestsFor, CdiNamesUuidsAsCdiDevices) {
  auto reqs = DeviceRequestsFor(TwoGpuSlot(), GpuDriverMode::kCdi);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].driver, "cdi");
  EXPECT_THAT(reqs[0].device_ids,
              ElementsAre("nvidia.com/gpu=GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000",
                          "nvidia.com/gpu=GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111"));
  EXPECT_THAT(reqs[0].capabilities, IsEmpty());
}

TEST(DeviceRequestsFor, CpuSlotHasNone) {
  EXPECT_THAT(DeviceRequestsFor(SlotPlan{0, {}, "0-3"}, GpuDriverMode::kNvidia), IsEmpty());
  EXPECT_THAT(DeviceRequestsFor(SlotPlan{0, {}, "0-3"}, GpuDriverMode::kCdi), IsEmpty());
}

TEST(DeviceRequestsFor, GpuWithoutUuidFallsBackToItsIndex) {
  SlotPlan slot{0, {{3, "", "X", 0}}, ""};
  EXPECT_THAT(DeviceRequestsFor(slot, GpuDriverMode::kNvidia)[0].device_ids, ElementsAre("3"));
  EXPECT_THAT(DeviceRequestsFor(slot, GpuDriverMode::kCdi)[0].device_ids,
              ElementsAre("nvidia.com/gpu=3"));
  EXPECT_EQ(NvidiaVisibleDevices(slot), "3");
}

TEST(NvidiaVisibleDevices, UuidsOrVoid) {
  EXPECT_EQ(NvidiaVisibleDevices(TwoGpuSlot()),
            "GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000,GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111");
  EXPECT_EQ(NvidiaVisibleDevices(SlotPlan{}), "void");
}

TEST(DeviceRequestsFromGpuDevice, DefaultIsAllGpus) {
  for (const std::string& value : {std::string(), std::string("  ")}) {
    auto reqs = DeviceRequestsFromGpuDevice(value);
    ASSERT_TRUE(reqs.ok());
    ASSERT_EQ(reqs->size(), 1u);
    EXPECT_EQ((*reqs)[0].driver, "cdi");
    EXPECT_THAT((*reqs)[0].device_ids, ElementsAre("nvidia.com/gpu=all"));
  }
}

TEST(DeviceRequestsFromGpuDevice, OneOrSeveralCdiNames) {
  auto one = DeviceRequestsFromGpuDevice("nvidia.com/gpu=1");
  ASSERT_TRUE(one.ok());
  EXPECT_THAT((*one)[0].device_ids, ElementsAre("nvidia.com/gpu=1"));

  auto several = DeviceRequestsFromGpuDevice(
      "nvidia.com/gpu=0, nvidia.com/gpu=GPU-8f6c1a2b-0000-1111-2222-333344445555,"
      "nvidia.com/gpu=0,nvidia.com/mig-gpu=1:0");
  ASSERT_TRUE(several.ok()) << several.status().ToString();
  ASSERT_EQ(several->size(), 1u);
  EXPECT_THAT(
      (*several)[0].device_ids,
      ElementsAre("nvidia.com/gpu=0", "nvidia.com/gpu=GPU-8f6c1a2b-0000-1111-2222-333344445555",
                  "nvidia.com/mig-gpu=1:0"));
}

TEST(DeviceRequestsFromGpuDevice, ErrorsSayHowToWriteIt) {
  auto error = [](const std::string& value) {
    auto r = DeviceRequestsFromGpuDevice(value);
    if (r.ok()) return std::string("(no error)");
    EXPECT_EQ(r.status().code(), Code::kInvalidInput);
    return r.status().message();
  };
  EXPECT_EQ(error("0"),
            "GPU_DEVICE \"0\": \"0\" is not a CDI device name (write it as nvidia.com/gpu=0)");
  EXPECT_EQ(error("nvidia.com/gpu=0,GPU-abc"),
            "GPU_DEVICE \"nvidia.com/gpu=0,GPU-abc\": \"GPU-abc\" is not a CDI device name (write "
            "it as nvidia.com/gpu=GPU-abc)");
  EXPECT_EQ(error("nvidia.com/gpu"),
            "GPU_DEVICE \"nvidia.com/gpu\": \"nvidia.com/gpu\" is not a CDI device name (e.g. "
            "nvidia.com/gpu=0 or nvidia.com/gpu=all)");
  EXPECT_EQ(error("gpu=0/x"),
            "GPU_DEVICE \"gpu=0/x\": \"gpu=0/x\" is not a CDI device name (e.g. nvidia.com/gpu=0 "
            "or nvidia.com/gpu=all)");
  EXPECT_EQ(error("nvidia.com/gpu=0 1"),
            "GPU_DEVICE \"nvidia.com/gpu=0 1\": \"nvidia.com/gpu=0 1\" is not a CDI device name "
            "(e.g. nvidia.com/gpu=0 or nvidia.com/gpu=all)");
  EXPECT_EQ(error("nvidia.com/gpu=0,,nvidia.com/gpu=1"),
            "GPU_DEVICE \"nvidia.com/gpu=0,,nvidia.com/gpu=1\" has an empty entry; separate CDI "
            "device names with single commas");
  EXPECT_EQ(error("nvidia.com/gpu="),
            "GPU_DEVICE \"nvidia.com/gpu=\": \"nvidia.com/gpu=\" is not a "
            "CDI device name (e.g. nvidia.com/gpu=0 or nvidia.com/gpu=all)");
}

ContainerOptions AdminOptions() {
  ContainerOptions o;
  o.ipc_mode = "host";
  o.shm_size_bytes = 16LL << 30;
  o.network_disabled = true;
  o.cpuset_cpus = "0-63";
  o.device_requests = {{"cdi", {"nvidia.com/gpu=all"}, {}, 0}};
  o.extra_mounts = {{"/data", "/data", true}};
  return o;
}

TEST(ApplySlot, GpuSlotGetsItsGpusCpusAndVisibleDevices) {
  ContainerOptions s = ApplySlot(AdminOptions(), TwoGpuSlot(), GpuDriverMode::kNvidia);
  ASSERT_EQ(s.device_requests.size(), 1u);
  EXPECT_EQ(s.device_requests[0].driver, "nvidia");
  EXPECT_EQ(s.device_requests[0].device_ids.size(), 2u);
  EXPECT_EQ(s.cpuset_cpus, "8-15");
  EXPECT_THAT(s.env, ElementsAre("NVIDIA_VISIBLE_DEVICES=GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000,"
                                 "GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111"));
  // The rest of the admin's options stay.
  EXPECT_EQ(s.ipc_mode, "host");
  EXPECT_EQ(s.shm_size_bytes, 16LL << 30);
  EXPECT_TRUE(s.network_disabled);
  ASSERT_EQ(s.extra_mounts.size(), 1u);
  EXPECT_TRUE(s.extra_mounts[0].read_only);
}

TEST(ApplySlot, CpuSlotKeepsGpuDeviceRequestsFromTheEnvFile) {
  ContainerOptions s = ApplySlot(AdminOptions(), SlotPlan{0, {}, ""}, GpuDriverMode::kCdi);
  ASSERT_EQ(s.device_requests.size(), 1u);
  EXPECT_THAT(s.device_requests[0].device_ids, ElementsAre("nvidia.com/gpu=all"));
  EXPECT_EQ(s.cpuset_cpus, "0-63");  // no slot cpuset: the admin's stays
  EXPECT_THAT(s.env, IsEmpty());
}

TEST(ApplySlot, CpuSlotWithoutGpusHidesEveryGpu) {
  ContainerOptions base;
  ContainerOptions s = ApplySlot(base, SlotPlan{2, {}, "4-5"}, GpuDriverMode::kNvidia);
  EXPECT_THAT(s.device_requests, IsEmpty());
  EXPECT_EQ(s.cpuset_cpus, "4-5");
  EXPECT_THAT(s.env, ElementsAre("NVIDIA_VISIBLE_DEVICES=void"));
}

TEST(ApplySlot, ReplacesAVisibleDevicesValueAlreadyThere) {
  ContainerOptions base;
  base.env = {"NVIDIA_VISIBLE_DEVICES=all", "OTHER=1"};
  ContainerOptions s = ApplySlot(base, TwoGpuSlot(), GpuDriverMode::kCdi);
  EXPECT_THAT(s.env, ElementsAre("OTHER=1", "NVIDIA_VISIBLE_DEVICES=GPU-0b9a7f4e-aaaa-bbbb-cccc-"
                                            "000000000000,GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111"));
}

}  // namespace
}  // namespace cw
