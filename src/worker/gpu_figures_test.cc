#include "worker/gpu_figures.h"

#include <gtest/gtest.h>

#include "gpu/test_gpus.h"

namespace cw {
namespace {

using testing::FakeNvml;

std::vector<WorkerSlot> Slots(const std::vector<std::vector<GpuInfo>>& gpus) {
  std::vector<WorkerSlot> slots;
  for (std::size_t i = 0; i < gpus.size(); ++i) {
    WorkerSlot s;
    s.plan.index = static_cast<int>(i);
    s.plan.gpus = gpus[i];
    slots.push_back(s);
  }
  return slots;
}

GpuSamplerOptions Manual() {
  GpuSamplerOptions o;
  o.background = false;
  return o;
}

TEST(GpuFigures, CpuSlotsNeverLoadNvml) {
  metrics::WorkerMetrics m(2);
  int loads = 0;
  NvmlLoader load = [&loads]() -> Result<NvmlLibrary> {
    ++loads;
    return NotFound("no");
  };
  GpuFigures f = StartGpuFigures(Slots({{}, {}}), &m, load, Manual());
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(f.sampler, nullptr);
  ASSERT_EQ(f.meters.size(), 2u);
  EXPECT_EQ(f.meters[0], nullptr);
  EXPECT_EQ(m.gpus(), nullptr);
}

TEST(GpuFigures, WithoutNvmlTheWorkerRunsOnWithoutFigures) {
  metrics::WorkerMetrics m(1);
  std::vector<GpuInfo> gpus = testing::TwoGpuBox();  // found by nvidia-smi, say
  NvmlLoader load = []() -> Result<NvmlLibrary> { return NotFound("libnvidia-ml.so.1: no"); };
  GpuFigures f = StartGpuFigures(Slots({gpus}), &m, load, Manual());
  EXPECT_EQ(f.sampler, nullptr);
  EXPECT_EQ(f.meters.at(0), nullptr);
  EXPECT_EQ(m.Render().find("gpu"), std::string::npos);
}

TEST(GpuFigures, EachSlotGetsAMeterOfItsGpusAndGaugesOfThem) {
  FakeNvml fake;
  fake.gpus = testing::EightH100();
  fake.used_bytes = {{2, 5ull << 30}, {6, 1ull << 30}};
  fake.utilization = {{2, 40}};
  NvmlLibrary lib = fake.Library();
  metrics::WorkerMetrics m(3);
  const auto& g = fake.gpus;
  GpuFigures f = StartGpuFigures(
      Slots({{g[0]}, {}, {g[1], g[2]}}), &m, [lib]() -> Result<NvmlLibrary> { return lib; },
      Manual());
  ASSERT_NE(f.sampler, nullptr);
  ASSERT_EQ(f.meters.size(), 3u);
  EXPECT_EQ(f.meters[0]->Describe(), "GPU 0");
  EXPECT_EQ(f.meters[1], nullptr);
  EXPECT_EQ(f.meters[2]->Describe(), "GPUs 1, 2");
  auto window = f.meters[2]->Begin();
  f.sampler->SampleNow();
  EXPECT_EQ(window->Finish().peak_memory_bytes, 5ull << 30);
  const std::string text = m.Render();
  const std::string uuid2 = testing::FakeUuid(2);
  EXPECT_NE(text.find("codabench_worker_gpu_utilization_percent{slot=\"2\",gpu=\"2\",uuid=\"" +
                      uuid2 + "\"} 40\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("gpu_memory_used_bytes{slot=\"0\",gpu=\"0\""), std::string::npos);
  // GPU 6 is no slot's: busy or not, it is not this worker's to show.
  EXPECT_EQ(text.find("gpu=\"6\""), std::string::npos);
}

TEST(GpuFigures, AJobsFiguresGoIntoTheHistogramsWhenTheWorkerHasThem) {
  metrics::WorkerMetrics m(1);
  GpuUsage usage;
  usage.peak_memory_bytes = 1ull << 30;
  usage.mean_utilization_percent = 50;
  RecordJobGpuUsage(&m, "scoring", usage);  // no GPU families: nothing, no crash
  RecordJobGpuUsage(nullptr, "scoring", usage);
  EXPECT_EQ(m.Render().find("gpu"), std::string::npos);
  m.EnableGpus();
  RecordJobGpuUsage(&m, "scoring", usage);
  RecordJobGpuUsage(&m, "scoring", GpuUsage{});  // a job with no figures is not observed
  const std::string text = m.Render();
  EXPECT_NE(text.find("codabench_worker_job_gpu_peak_memory_bytes_count{stage=\"scoring\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("codabench_worker_job_gpu_utilization_percent_sum{stage=\"scoring\"} 50\n"),
            std::string::npos);
}

}  // namespace
}  // namespace cw
