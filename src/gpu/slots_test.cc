#include "gpu/slots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gpu/test_gpus.h"

namespace cw {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::vector<int>> GpuIndexes(const std::vector<SlotPlan>& slots) {
  std::vector<std::vector<int>> out;
  for (const SlotPlan& s : slots) {
    std::vector<int> idx;
    for (const GpuInfo& g : s.gpus) idx.push_back(g.index);
    out.push_back(idx);
  }
  return out;
}

std::vector<std::string> Cpusets(const std::vector<SlotPlan>& slots) {
  std::vector<std::string> out;
  for (const SlotPlan& s : slots) out.push_back(s.cpuset);
  return out;
}

std::string ErrorOf(const std::vector<GpuInfo>& gpus, const SlotRequest& req) {
  auto plan = PlanSlots(gpus, req, 16);
  if (plan.ok()) return "(no error)";
  EXPECT_EQ(plan.status().code(), Code::kInvalidInput);
  return plan.status().message();
}

TEST(PlanSlots, AutoGivesOneSlotPerGpuWithItsOwnCpus) {
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::EightH100(), {}, 64, &warnings);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->size(), 8u);
  EXPECT_EQ((*plan)[5].index, 5);
  EXPECT_EQ((*plan)[5].gpus[0].uuid, testing::FakeUuid(5));
  EXPECT_THAT(Cpusets(*plan),
              ElementsAre("0-7", "8-15", "16-23", "24-31", "32-39", "40-47", "48-55", "56-63"));
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(PlanSlots, AutoOnTwoGpuBox) {
  auto plan = PlanSlots(testing::TwoGpuBox(), {}, 16);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0), ElementsAre(1)));
  EXPECT_THAT(Cpusets(*plan), ElementsAre("0-7", "8-15"));
}

TEST(PlanSlots, NoGpusGivesCpuSlots) {
  auto one = PlanSlots({}, {}, 16);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_TRUE((*one)[0].gpus.empty());
  EXPECT_EQ((*one)[0].cpuset, "");  // one slot: nothing to split, no pinning

  SlotRequest req;
  req.slots = 3;
  auto three = PlanSlots({}, req, 8);
  ASSERT_TRUE(three.ok());
  EXPECT_THAT(Cpusets(*three), ElementsAre("0-2", "3-5", "6-7"));
  EXPECT_EQ((*three)[2].index, 2);
}

TEST(PlanSlots, GpusPerSlotTakesWholeGroupsAndWarnsAboutTheRest) {
  SlotRequest req;
  req.gpus_per_slot = 2;
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::EightH100(), req, 64, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0, 1), ElementsAre(2, 3),
                                             ElementsAre(4, 5), ElementsAre(6, 7)));
  EXPECT_THAT(warnings, IsEmpty());

  req.gpus_per_slot = 3;
  plan = PlanSlots(testing::EightH100(), req, 64, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0, 1, 2), ElementsAre(3, 4, 5)));
  EXPECT_THAT(warnings, ElementsAre("GPUs 6-7 are in no slot and stay unused"));
}

TEST(PlanSlots, GpusPerSlotWithSlotsTakesThatMany) {
  SlotRequest req;
  req.gpus_per_slot = 2;
  req.slots = 2;
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::EightH100(), req, 64, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0, 1), ElementsAre(2, 3)));
  EXPECT_THAT(warnings, ElementsAre("GPUs 4-7 are in no slot and stay unused"));
  EXPECT_THAT(Cpusets(*plan), ElementsAre("0-31", "32-63"));
}

TEST(PlanSlots, GpusPerSlotErrors) {
  SlotRequest req;
  req.gpus_per_slot = 4;
  EXPECT_EQ(ErrorOf(testing::TwoGpuBox(), req), "--gpus-per-slot 4 but this machine has 2 GPUs");
  req.gpus_per_slot = 1;
  EXPECT_EQ(ErrorOf({}, req), "--gpus-per-slot 1 but no GPUs were found on this machine");
  req.gpus_per_slot = 4;
  req.slots = 3;
  EXPECT_EQ(ErrorOf(testing::EightH100(), req),
            "--slots 3 with --gpus-per-slot 4 needs 12 GPUs but this machine has 8 GPUs");
}

TEST(PlanSlots, SlotsSplitGpusEvenlyInIndexOrder) {
  SlotRequest req;
  req.slots = 3;
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::EightH100(), req, 16, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan),
              ElementsAre(ElementsAre(0, 1, 2), ElementsAre(3, 4, 5), ElementsAre(6, 7)));
  EXPECT_THAT(Cpusets(*plan), ElementsAre("0-5", "6-10", "11-15"));
  EXPECT_THAT(warnings, IsEmpty());

  req.slots = 1;
  plan = PlanSlots(testing::TwoGpuBox(), req, 16);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0, 1)));
}

TEST(PlanSlots, MoreSlotsThanGpusIsAnError) {
  SlotRequest req;
  req.slots = 9;
  EXPECT_EQ(ErrorOf(testing::EightH100(), req),
            "--slots 9 but this machine has 8 GPUs and a GPU can serve only one slot: use "
            "--slots 8 or fewer");
  req.slots = 3;
  EXPECT_EQ(ErrorOf({testing::TwoGpuBox()[0]}, req),
            "--slots 3 but this machine has 1 GPU and a GPU can serve only one slot: use "
            "--slots 1 or fewer");
}

TEST(PlanSlots, GpuListIsSortedFirst) {
  std::vector<GpuInfo> gpus = testing::EightH100();
  std::reverse(gpus.begin(), gpus.end());
  SlotRequest req;
  req.slots = 2;
  auto plan = PlanSlots(gpus, req, 8);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0, 1, 2, 3), ElementsAre(4, 5, 6, 7)));
}

TEST(PlanSlots, ExplicitMapByIndexAndUuid) {
  SlotRequest req;
  req.gpu_map = " 0, 1 ;" + testing::FakeUuid(3) + ",2; 7";
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::EightH100(), req, 12, &warnings);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0, 1), ElementsAre(3, 2), ElementsAre(7)));
  EXPECT_THAT(Cpusets(*plan), ElementsAre("0-3", "4-7", "8-11"));
  EXPECT_THAT(warnings, ElementsAre("GPUs 4-6 are in no slot and stay unused"));
}

TEST(PlanSlots, MapLeavingOneGpuOutSaysSo) {
  SlotRequest req;
  req.gpu_map = "1";
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::TwoGpuBox(), req, 4, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(1)));
  EXPECT_THAT(Cpusets(*plan), ElementsAre(""));  // one slot: no pinning
  EXPECT_THAT(warnings, ElementsAre("GPU 0 is in no slot and stays unused"));
}

TEST(PlanSlots, MapUuidsIgnoreCaseAndIndexesLeadingZeros) {
  SlotRequest req;
  req.gpu_map = "GPU-0B9A7F4E-AAAA-BBBB-CCCC-000000000000;01";
  auto plan = PlanSlots(testing::TwoGpuBox(), req, 4);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(GpuIndexes(*plan), ElementsAre(ElementsAre(0), ElementsAre(1)));
}

TEST(PlanSlots, MapWinsOverSlotsAndGpusPerSlotWithAWarning) {
  SlotRequest req;
  req.gpu_map = "0;1";
  req.slots = 4;
  req.gpus_per_slot = 2;
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::TwoGpuBox(), req, 4, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->size(), 2u);
  EXPECT_THAT(warnings,
              ElementsAre("--slots 4 is ignored: --gpu-map defines 2 slots",
                          "--gpus-per-slot is ignored: --gpu-map says which GPUs each slot has"));
}

TEST(PlanSlots, MapErrors) {
  auto map_error = [](const std::vector<GpuInfo>& gpus, const std::string& map) {
    SlotRequest req;
    req.gpu_map = map;
    return ErrorOf(gpus, req);
  };
  const auto eight = testing::EightH100();
  EXPECT_EQ(map_error(eight, "0,1;9"), "--gpu-map names GPU 9 but this machine has GPUs 0-7");
  EXPECT_EQ(map_error(eight, "99999999999999"),
            "--gpu-map names GPU 99999999999999 but this machine has GPUs 0-7");
  std::vector<GpuInfo> gaps = {eight[0], eight[2], eight[5]};
  EXPECT_EQ(map_error(gaps, "1"), "--gpu-map names GPU 1 but this machine has GPUs 0, 2, 5");
  EXPECT_EQ(map_error({eight[4]}, "1"), "--gpu-map names GPU 1 but this machine has GPU 4");
  EXPECT_EQ(
      map_error(testing::TwoGpuBox(), "GPU-nope"),
      "--gpu-map names GPU-nope but no GPU of this machine has that UUID (its GPUs: "
      "0 GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000, 1 GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111)");
  EXPECT_EQ(map_error({}, "0;1"),
            "--gpu-map \"0;1\" names GPUs but no GPUs were found on this machine");
  EXPECT_EQ(map_error(eight, "0,1;1,2"),
            "--gpu-map puts GPU 1 in slot 0 and slot 1; a GPU can serve only one slot");
  EXPECT_EQ(map_error(eight, "0;" + testing::FakeUuid(0)),
            "--gpu-map puts GPU 0 in slot 0 and slot 1; a GPU can serve only one slot");
  EXPECT_EQ(map_error(eight, "0,00"), "--gpu-map names GPU 0 twice in slot 0");
  EXPECT_EQ(map_error(eight, "0;;1"),
            "--gpu-map \"0;;1\": slot 1 names no GPU (write GPU indexes or UUIDs separated by ',' "
            "within a slot and ';' between slots, e.g. \"0,1;2,3\")");
  EXPECT_EQ(map_error(eight, "0;1;"),
            "--gpu-map \"0;1;\": slot 2 names no GPU (write GPU indexes or UUIDs separated by ',' "
            "within a slot and ';' between slots, e.g. \"0,1;2,3\")");
  EXPECT_EQ(map_error(eight, "0,,1"),
            "--gpu-map \"0,,1\": slot 0 has an empty entry (write GPU indexes or UUIDs separated "
            "by ',' within a slot and ';' between slots, e.g. \"0,1;2,3\")");
}

TEST(PlanSlots, BlankMapIsNoMap) {
  SlotRequest req;
  req.gpu_map = "  ";
  auto plan = PlanSlots(testing::TwoGpuBox(), req, 4);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->size(), 2u);
}

TEST(PlanSlots, NegativeCountsAreErrors) {
  SlotRequest req;
  req.slots = -1;
  EXPECT_EQ(ErrorOf({}, req), "--slots must be 0 (automatic) or more, not -1");
  req.slots = 0;
  req.gpus_per_slot = -2;
  EXPECT_EQ(ErrorOf({}, req), "--gpus-per-slot must be 0 (not set) or more, not -2");
}

TEST(PlanSlots, FewerCpusThanSlotsShareRoundRobin) {
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::EightH100(), {}, 3, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Cpusets(*plan), ElementsAre("0", "1", "2", "0", "1", "2", "0", "1"));
  EXPECT_THAT(warnings, ElementsAre("8 slots share 3 CPUs: each gets one, some the same"));
}

TEST(PlanSlots, SingleCpuPerSlotIsWrittenAlone) {
  auto plan = PlanSlots(testing::TwoGpuBox(), {}, 2);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Cpusets(*plan), ElementsAre("0", "1"));
}

TEST(PlanSlots, UnknownCpuCountOrNoSplitLeavesCpusetsEmpty) {
  std::vector<std::string> warnings;
  auto plan = PlanSlots(testing::TwoGpuBox(), {}, 0, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Cpusets(*plan), ElementsAre("", ""));
  EXPECT_THAT(warnings, ElementsAre("the number of CPUs is unknown; slots are not pinned to CPUs"));

  SlotRequest req;
  req.split_cpus = false;
  warnings.clear();  // PlanSlots appends
  plan = PlanSlots(testing::TwoGpuBox(), req, 16, &warnings);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Cpusets(*plan), ElementsAre("", ""));
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(DescribeSlot, ForTheStartUpLog) {
  auto plan = PlanSlots(testing::TwoGpuBox(), {}, 16);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(DescribeSlot((*plan)[1]),
            "slot 1: GPU 1 (GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111), CPUs 8-15");
  SlotPlan two{0, testing::TwoGpuBox(), ""};
  EXPECT_EQ(DescribeSlot(two),
            "slot 0: GPUs 0,1 (GPU-0b9a7f4e-aaaa-bbbb-cccc-000000000000, "
            "GPU-1c8b6e3d-aaaa-bbbb-cccc-111111111111), any CPU");
  EXPECT_EQ(DescribeSlot(SlotPlan{2, {}, "5"}), "slot 2: no GPU, CPUs 5");
}

}  // namespace
}  // namespace cw
