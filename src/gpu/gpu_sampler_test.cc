#include "gpu/gpu_sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "gpu/test_gpus.h"

namespace cw {
namespace {

using ::testing::ElementsAre;
using testing::FakeNvml;
using testing::FakeUuid;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::uint64_t kGiB = 1ull << 30;

// A sampler whose rounds the test runs (SampleNow), on an 8-GPU box.
class GpuSamplerTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_.gpus = testing::EightH100(); }

  std::unique_ptr<GpuSampler> Start(NvmlLibrary lib) {
    GpuSamplerOptions options;
    options.background = false;
    options.log = [this](const std::string& line) { log_.push_back(line); };
    auto sampler = GpuSampler::Start(std::move(lib), options);
    EXPECT_TRUE(sampler.ok()) << sampler.status().ToString();
    return sampler.ok() ? std::move(*sampler) : nullptr;
  }
  std::unique_ptr<GpuSampler> Start() { return Start(fake_.Library()); }

  FakeNvml fake_;
  std::vector<std::string> log_;
};

TEST_F(GpuSamplerTest, PeakIsTheHighestSumOfItsGpusAndMeanIsOverEverySample) {
  auto sampler = Start();
  auto meter = sampler->MeterFor({FakeUuid(2), FakeUuid(3)});
  ASSERT_NE(meter, nullptr);
  EXPECT_EQ(meter->Describe(), "GPUs 2, 3");
  auto window = meter->Begin();
  // GPU 0 is another slot's: busier and fuller, and never counted here.
  fake_.used_bytes = {{0, 70 * kGiB}, {2, 1 * kGiB}, {3, 2 * kGiB}};
  fake_.utilization = {{0, 100}, {2, 50}, {3, 100}};
  sampler->SampleNow();
  fake_.used_bytes = {{0, 70 * kGiB}, {2, 4 * kGiB}, {3, 0}};
  fake_.utilization = {{0, 100}, {2, 0}, {3, 50}};
  sampler->SampleNow();
  GpuUsage usage = window->Finish();
  EXPECT_EQ(usage.peak_memory_bytes, 4 * kGiB);     // round 2's 4 + 0 beats round 1's 1 + 2
  EXPECT_EQ(usage.mean_utilization_percent, 50.0);  // (50 + 100 + 0 + 50) / 4
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(GpuSamplerTest, AWindowCountsOnlyTheRoundsBetweenBeginAndFinish) {
  auto sampler = Start();
  auto meter = sampler->MeterFor({FakeUuid(0)});
  EXPECT_EQ(meter->Describe(), "GPU 0");
  fake_.used_bytes = {{0, 10 * kGiB}};
  fake_.utilization = {{0, 90}};
  sampler->SampleNow();  // before the window: not the job's
  auto window = meter->Begin();
  fake_.used_bytes = {{0, 1 * kGiB}};
  fake_.utilization = {{0, 30}};
  sampler->SampleNow();
  GpuUsage usage = window->Finish();
  EXPECT_EQ(usage.peak_memory_bytes, 1 * kGiB);
  EXPECT_EQ(usage.mean_utilization_percent, 30.0);
  sampler->SampleNow();  // after: a finished window is gone
  GpuUsage again = window->Finish();
  EXPECT_FALSE(again.peak_memory_bytes);
  EXPECT_FALSE(again.mean_utilization_percent);
}

TEST_F(GpuSamplerTest, TwoWindowsOnOneMeterAreIndependent) {
  auto sampler = Start();
  auto meter = sampler->MeterFor({FakeUuid(1)});
  auto early = meter->Begin();
  fake_.used_bytes = {{1, 8 * kGiB}};
  sampler->SampleNow();
  auto late = meter->Begin();
  fake_.used_bytes = {{1, 2 * kGiB}};
  sampler->SampleNow();
  EXPECT_EQ(late->Finish().peak_memory_bytes, 2 * kGiB);
  EXPECT_EQ(early->Finish().peak_memory_bytes, 8 * kGiB);
}

TEST_F(GpuSamplerTest, AWindowShorterThanARoundHasNoFigures) {
  auto sampler = Start();
  auto window = sampler->MeterFor({FakeUuid(0)})->Begin();
  GpuUsage usage = window->Finish();
  EXPECT_FALSE(usage.peak_memory_bytes);
  EXPECT_FALSE(usage.mean_utilization_percent);
  EXPECT_EQ(DescribeGpuUsage(usage), "");
}

TEST_F(GpuSamplerTest, LatestHasEveryGpusLastReading) {
  auto sampler = Start();
  ASSERT_EQ(sampler->Latest().size(), 8u);
  EXPECT_FALSE(sampler->Latest()[5].memory_used_bytes);  // no round yet
  EXPECT_EQ(sampler->Latest()[5].uuid, FakeUuid(5));
  fake_.used_bytes = {{5, 3 * kGiB}};
  fake_.utilization = {{5, 250}};  // a driver's glitch: a percent stays a percent
  sampler->SampleNow();
  GpuReading r = sampler->Latest()[5];
  EXPECT_EQ(r.index, 5);
  EXPECT_EQ(r.memory_used_bytes, 3 * kGiB);
  EXPECT_EQ(r.memory_total_bytes, testing::kH100Bytes);
  EXPECT_EQ(r.utilization_percent, 100.0);
}

TEST_F(GpuSamplerTest, AnOldDriverWithoutUtilizationGivesMemoryAlone) {
  NvmlLibrary lib = fake_.Library();
  lib.get_utilization = nullptr;
  auto sampler = Start(lib);
  auto window = sampler->MeterFor({FakeUuid(0)})->Begin();
  fake_.used_bytes = {{0, 5 * kGiB}};
  sampler->SampleNow();
  GpuUsage usage = window->Finish();
  EXPECT_EQ(usage.peak_memory_bytes, 5 * kGiB);
  EXPECT_FALSE(usage.mean_utilization_percent);
  EXPECT_FALSE(sampler->Latest()[0].utilization_percent);
  EXPECT_EQ(DescribeGpuUsage(usage), "peak memory 5120 MiB");
  EXPECT_THAT(log_, IsEmpty());  // a missing symbol is no failure to report every second
}

TEST_F(GpuSamplerTest, WithoutTheMemoryQueryUtilizationAlone) {
  NvmlLibrary lib = fake_.Library();
  lib.get_memory = nullptr;
  auto sampler = Start(lib);
  auto window = sampler->MeterFor({FakeUuid(0)})->Begin();
  fake_.utilization = {{0, 42}};
  sampler->SampleNow();
  GpuUsage usage = window->Finish();
  EXPECT_FALSE(usage.peak_memory_bytes);
  EXPECT_EQ(usage.mean_utilization_percent, 42.0);
  EXPECT_EQ(DescribeGpuUsage(usage), "utilisation 42% on average");
}

TEST(GpuSampler, ADriverThatAnswersNeitherQueryIsNotSampled) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  NvmlLibrary lib = fake.Library();
  lib.get_memory = nullptr;
  lib.get_utilization = nullptr;
  auto sampler = GpuSampler::Start(lib, {});
  ASSERT_FALSE(sampler.ok());
  EXPECT_EQ(sampler.status().code(), Code::kUnavailable);
  EXPECT_EQ(fake.inits, 0);
}

TEST_F(GpuSamplerTest, AGpuThatFailsMidRunIsLeftOutAndLoggedOnceUntilItAnswers) {
  auto sampler = Start();
  auto window = sampler->MeterFor({FakeUuid(2), FakeUuid(3)})->Begin();
  fake_.used_bytes = {{2, 1 * kGiB}, {3, 1 * kGiB}};
  fake_.utilization = {{2, 20}, {3, 40}};
  sampler->SampleNow();
  // GPU 3 falls off the bus: its round gives no memory, so the sum of that
  // round (which would read as 9 GiB, less than the truth) is not a peak.
  fake_.used_bytes = {{2, 9 * kGiB}, {3, 1 * kGiB}};
  fake_.utilization = {{2, 60}, {3, 40}};
  fake_.usage_rc = {{3, 15}};
  sampler->SampleNow();
  sampler->SampleNow();
  EXPECT_FALSE(sampler->Latest()[3].memory_used_bytes);
  fake_.usage_rc.clear();
  fake_.used_bytes = {{2, 1 * kGiB}, {3, 2 * kGiB}};
  sampler->SampleNow();
  GpuUsage usage = window->Finish();
  EXPECT_EQ(usage.peak_memory_bytes, 3 * kGiB);
  // 20 + 40, 60, 60, 60 + 40: GPU 3's two failed readings are not zeros.
  EXPECT_EQ(usage.mean_utilization_percent, 280.0 / 6);
  ASSERT_EQ(log_.size(), 2u);
  EXPECT_EQ(log_[0], "GPU 3 (" + FakeUuid(3) +
                         "): cannot read its use (memory: GPU is lost (NVML error 15); "
                         "utilisation: GPU is lost (NVML error 15)); its figures are left out "
                         "until it answers");
  EXPECT_EQ(log_[1], "GPU 3 (" + FakeUuid(3) + "): its use can be read again");
}

TEST_F(GpuSamplerTest, UnsupportedUtilizationIsLeftOutButMemoryCounts) {
  fake_.utilization_rc = 3;  // NVML_ERROR_NOT_SUPPORTED (a MIG-enabled GPU)
  auto sampler = Start();
  auto window = sampler->MeterFor({FakeUuid(0)})->Begin();
  fake_.used_bytes = {{0, 2 * kGiB}};
  sampler->SampleNow();
  sampler->SampleNow();
  GpuUsage usage = window->Finish();
  EXPECT_EQ(usage.peak_memory_bytes, 2 * kGiB);
  EXPECT_FALSE(usage.mean_utilization_percent);
  EXPECT_EQ(log_.size(), 8u);  // once for each of the 8 GPUs, not every round
}

TEST_F(GpuSamplerTest, UnknownGpusAreLeftOutOfAMeter) {
  auto sampler = Start();
  auto meter = sampler->MeterFor({"GPU-not-here", FakeUuid(4)});
  ASSERT_NE(meter, nullptr);
  EXPECT_EQ(meter->Describe(), "GPU 4");
  EXPECT_EQ(sampler->MeterFor({"GPU-not-here"}), nullptr);
  EXPECT_EQ(sampler->MeterFor({}), nullptr);
  ASSERT_EQ(log_.size(), 2u);
  EXPECT_EQ(log_[0], "GPU-not-here is not among the GPUs NVML lists: its use is not measured");
}

TEST(GpuSampler, InitFailureIsUnavailableWithoutShutdown) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  fake.init_rc = 18;
  auto sampler = GpuSampler::Start(fake.Library(), {});
  ASSERT_FALSE(sampler.ok());
  EXPECT_EQ(sampler.status().message(),
            "NVML could not start: Driver/library version mismatch (NVML error 18)");
  EXPECT_EQ(fake.shutdowns, 0);
}

TEST(GpuSampler, NoGpuOrACountFailureShutsNvmlDown) {
  FakeNvml none;
  auto empty = GpuSampler::Start(none.Library(), {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "NVML lists no GPU to sample");
  EXPECT_EQ(none.shutdowns, 1);

  FakeNvml broken;
  broken.gpus = testing::TwoGpuBox();
  broken.count_rc = 9;
  auto failed = GpuSampler::Start(broken.Library(), {});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(broken.shutdowns, 1);
}

TEST(GpuSampler, AGpuWithoutAUuidIsNotSampled) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  fake.uuid_rc = 999;
  auto sampler = GpuSampler::Start(fake.Library(), {});
  ASSERT_FALSE(sampler.ok());  // neither GPU can be any slot's
  EXPECT_EQ(fake.shutdowns, 1);
}

TEST(GpuSampler, IncompleteTableIsABug) {
  auto sampler = GpuSampler::Start(NvmlLibrary{}, {});
  ASSERT_FALSE(sampler.ok());
  EXPECT_EQ(sampler.status().code(), Code::kInternal);
}

// Waits up to 10 s for `done`.
template <typename Fn>
bool Eventually(Fn done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(GpuSampler, TheThreadSamplesEachIntervalAndStopsWithTheSampler) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  fake.used_bytes = {{1, 7 * kGiB}};
  auto rounds = std::make_shared<std::atomic<int>>(0);
  GpuSamplerOptions options;
  options.interval = std::chrono::milliseconds(5);
  options.on_sample = [rounds](const std::vector<GpuReading>& readings) {
    if (readings.size() == 2 && readings[1].memory_used_bytes == 7 * kGiB) ++*rounds;
  };
  auto sampler = GpuSampler::Start(fake.Library(), options);
  ASSERT_TRUE(sampler.ok());
  auto window = (*sampler)->MeterFor({testing::TwoGpuBox()[1].uuid})->Begin();
  const int before = *rounds;
  EXPECT_TRUE(Eventually([&] { return *rounds >= before + 3; }));
  EXPECT_EQ(window->Finish().peak_memory_bytes, 7 * kGiB);
  sampler->reset();
  EXPECT_EQ(fake.shutdowns, 1);
  const int after = *rounds;
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(*rounds, after);  // no round after the sampler is gone
}

TEST(GpuSampler, AHangingDriverCallDoesNotHoldUpTheStop) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  auto rounds = std::make_shared<std::atomic<int>>(0);
  GpuSamplerOptions options;
  options.interval = std::chrono::milliseconds(5);
  options.stop_wait = std::chrono::milliseconds(50);
  options.on_sample = [rounds](const std::vector<GpuReading>&) { ++*rounds; };
  auto sampler = GpuSampler::Start(fake.Library(), options);
  ASSERT_TRUE(sampler.ok());
  auto window = (*sampler)->MeterFor({testing::TwoGpuBox()[0].uuid})->Begin();
  // Two rounds after the start: the first may have been folded just before it.
  const int begun_at = *rounds;
  ASSERT_TRUE(Eventually([&] { return *rounds >= begun_at + 2; }));
  fake.hang = true;
  const int calls = fake.memory_calls;
  ASSERT_TRUE(Eventually([&] { return fake.memory_calls > calls; }));  // it is inside
  const int hung_at = *rounds;
  // A job finishing meanwhile gets what was sampled, at once.
  EXPECT_TRUE(window->Finish().peak_memory_bytes);
  const auto t0 = std::chrono::steady_clock::now();
  sampler->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(fake.shutdowns, 0);  // never under a thread still in the driver
  // Let the left-behind thread finish its round before `fake` goes away: a
  // round asks each of the two GPUs' utilisation once, last.
  const int round_end = (fake.utilization_calls / 2 + 1) * 2;
  fake.hang = false;
  EXPECT_TRUE(Eventually([&] { return fake.utilization_calls >= round_end; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // That round ended after the stop: it does not call into its owner.
  EXPECT_EQ(*rounds, hung_at);
}

}  // namespace
}  // namespace cw
