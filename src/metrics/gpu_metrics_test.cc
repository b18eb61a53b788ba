#include "metrics/gpu_metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "metrics/worker_metrics.h"

namespace cw::metrics {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(GpuMetrics, AWorkerWithoutGpuFiguresHasNoGpuFamilies) {
  WorkerMetrics m(1);
  EXPECT_EQ(m.gpus(), nullptr);
  EXPECT_EQ(m.Render().find("gpu"), std::string::npos);
}

TEST(GpuMetrics, EachSlotsGpusHaveTheirLastReading) {
  WorkerMetrics m(2);
  GpuMetrics& gpus = m.EnableGpus();
  EXPECT_EQ(&gpus, &m.EnableGpus());  // once: a second call adds no second set
  gpus.Reading({"1", 3, "GPU-3aaa", 87, 2e9, 8e10});
  gpus.Reading({"1", 3, "GPU-3aaa", 12, 3e9, 8e10});  // replaces, never adds
  gpus.Reading({"0", 0, "GPU-0aaa", std::nullopt, 1e9, 8e10});
  const std::string text = m.Render();
  EXPECT_TRUE(Has(
      text, "codabench_worker_gpu_utilization_percent{slot=\"1\",gpu=\"3\",uuid=\"GPU-3aaa\"} 12"))
      << text;
  EXPECT_TRUE(Has(text, "# TYPE codabench_worker_gpu_memory_used_bytes gauge"));
  // A figure the driver did not give reads NaN, not the last value seen.
  EXPECT_TRUE(
      Has(text,
          "codabench_worker_gpu_utilization_percent{slot=\"0\",gpu=\"0\",uuid=\"GPU-0aaa\"} NaN"));
  EXPECT_EQ(text.find("gpu_utilization_percent{slot=\"1\",gpu=\"3\",uuid=\"GPU-3aaa\"} 87"),
            std::string::npos);
  EXPECT_TRUE(Has(
      text,
      "codabench_worker_gpu_memory_used_bytes{slot=\"1\",gpu=\"3\",uuid=\"GPU-3aaa\"} 3000000000"));
  EXPECT_TRUE(Has(text,
                  "codabench_worker_gpu_memory_total_bytes{slot=\"0\",gpu=\"0\",uuid=\"GPU-0aaa\"} "
                  "80000000000"));
}

TEST(GpuMetrics, JobsGoIntoHistogramsByStageAndAbsentFiguresStayOut) {
  WorkerMetrics m(1);
  GpuMetrics& gpus = m.EnableGpus();
  gpus.JobUsage("prediction", 3.0 * (1ull << 30), 87.5);
  gpus.JobUsage("scoring", std::nullopt, 10);
  const std::string text = m.Render();
  const std::string peak = "codabench_worker_job_gpu_peak_memory_bytes";
  const std::string util = "codabench_worker_job_gpu_utilization_percent";
  EXPECT_TRUE(Has(text, peak + "_count{stage=\"prediction\"} 1")) << text;
  EXPECT_TRUE(Has(text, peak + "_bucket{stage=\"prediction\",le=\"2147483648\"} 0"));
  EXPECT_TRUE(Has(text, peak + "_bucket{stage=\"prediction\",le=\"4294967296\"} 1"));
  EXPECT_EQ(text.find(peak + "_count{stage=\"scoring\"}"), std::string::npos);
  EXPECT_TRUE(Has(text, util + "_bucket{stage=\"prediction\",le=\"75\"} 0"));
  EXPECT_TRUE(Has(text, util + "_bucket{stage=\"prediction\",le=\"90\"} 1"));
  EXPECT_TRUE(Has(text, util + "_sum{stage=\"scoring\"} 10"));
}

TEST(GpuMetrics, MemoryBucketsRunFromHalfAGibibyteTo256) {
  std::vector<double> b = GpuMemoryBuckets();
  ASSERT_EQ(b.size(), 10u);
  EXPECT_EQ(b.front(), 512.0 * (1 << 20));
  EXPECT_EQ(b.back(), 256.0 * (1ull << 30));
}

}  // namespace
}  // namespace cw::metrics
