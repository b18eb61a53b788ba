#include "gpu/nvidia_smi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gpu/gpu_info.h"

namespace cw {
namespace {

using ::testing::ElementsAre;

TEST(ParseNvidiaSmiCsv, ReadsTheUsualAnswer) {
  auto gpus = ParseNvidiaSmiCsv(
      "0, GPU-8f6c1a2b-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559\n"
      "1, GPU-9a7d2b3c-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559\n");
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[1].index, 1);
  EXPECT_EQ((*gpus)[1].uuid, "GPU-9a7d2b3c-0000-1111-2222-333344445555");
  EXPECT_EQ((*gpus)[1].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ((*gpus)[1].memory_total_bytes, 81559ull * 1024 * 1024);
}

TEST(ParseNvidiaSmiCsv, ToleratesOddSpacingCrLfAndBlankLines) {
  auto gpus = ParseNvidiaSmiCsv(
      "\n  0 ,GPU-a ,  Tesla V100-SXM2-16GB   ,16160  \r\n\r\n\t1,GPU-b,Tesla T4,15360\r\n\n");
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[0].uuid, "GPU-a");
  EXPECT_EQ((*gpus)[0].name, "Tesla V100-SXM2-16GB");
  EXPECT_EQ((*gpus)[0].memory_total_bytes, 16160ull << 20);
  EXPECT_EQ((*gpus)[1].name, "Tesla T4");
}

TEST(ParseNvidiaSmiCsv, NameWithCommasKeepsThem) {
  auto gpus = ParseNvidiaSmiCsv("0, GPU-a, Imaginary GPU, Rev 2 , 1024\n");
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  EXPECT_EQ((*gpus)[0].name, "Imaginary GPU, Rev 2");
  EXPECT_EQ((*gpus)[0].memory_total_bytes, 1024ull << 20);
}

TEST(ParseNvidiaSmiCsv, NotAvailableMemoryIsUnknown) {
  auto gpus = ParseNvidiaSmiCsv("0, GPU-a, NVIDIA GH200 480GB, [N/A]\n1, GPU-b, X, N/A\n");
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  EXPECT_EQ((*gpus)[0].memory_total_bytes, 0u);
  EXPECT_EQ((*gpus)[1].memory_total_bytes, 0u);
}

TEST(ParseNvidiaSmiCsv, EmptyOutputAndNoDevicesAreNoGpus) {
  auto empty = ParseNvidiaSmiCsv("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto none = ParseNvidiaSmiCsv("No devices were found\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ParseNvidiaSmiCsv, ErrorMessageInsteadOfCsvIsQuoted) {
  auto gpus = ParseNvidiaSmiCsv(
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure "
      "that the latest NVIDIA driver is installed and running.\n\n");
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kUnavailable);
  EXPECT_EQ(gpus.status().message(),
            "nvidia-smi answered \"NVIDIA-SMI has failed because it couldn't communicate with the "
            "NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\" "
            "where a GPU line (index, uuid, name, memory) was expected");
}

TEST(ParseNvidiaSmiCsv, RejectsBadIndexMissingFieldsAndMissingUuid) {
  EXPECT_FALSE(ParseNvidiaSmiCsv("x, GPU-a, T4, 1\n").ok());
  EXPECT_FALSE(ParseNvidiaSmiCsv("-1, GPU-a, T4, 1\n").ok());
  EXPECT_FALSE(ParseNvidiaSmiCsv("0, GPU-a, 1\n").ok());
  EXPECT_FALSE(ParseNvidiaSmiCsv("0, [N/A], T4, 1\n").ok());
  EXPECT_FALSE(ParseNvidiaSmiCsv("0, , T4, 1\n").ok());
  EXPECT_FALSE(ParseNvidiaSmiCsv("99999999999999999999, GPU-a, T4, 1\n").ok());
  // A good line does not excuse a bad one.
  EXPECT_FALSE(
      ParseNvidiaSmiCsv("0, GPU-a, T4, 1\nFailed to initialize NVML: Unknown Error\n").ok());
}

struct FakeSmi {
  Result<CommandOutput> answer = CommandOutput{};
  std::vector<std::string> argv;
  std::chrono::milliseconds timeout{0};
  int calls = 0;

  CommandRunner Runner() {
    return [this](const std::vector<std::string>& a, std::chrono::milliseconds t) {
      ++calls;
      argv = a;
      timeout = t;
      return answer;
    };
  }
};

TEST(QueryNvidiaSmi, RunsTheCsvQueryWithTheTimeout) {
  FakeSmi smi;
  smi.answer = CommandOutput{0, "0, GPU-a, Tesla T4, 15360\n"};
  auto gpus = QueryNvidiaSmi(smi.Runner(), std::chrono::milliseconds(10000));
  ASSERT_TRUE(gpus.ok());
  EXPECT_EQ(gpus->size(), 1u);
  EXPECT_THAT(smi.argv, ElementsAre("nvidia-smi", "--query-gpu=index,uuid,name,memory.total",
                                    "--format=csv,noheader,nounits"));
  EXPECT_EQ(smi.timeout, std::chrono::milliseconds(10000));
}

TEST(QueryNvidiaSmi, NotInstalledStaysNotFound) {
  FakeSmi smi;
  smi.answer = NotFound("nvidia-smi is not installed (not found in PATH)");
  auto gpus = QueryNvidiaSmi(smi.Runner(), std::chrono::milliseconds(1));
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kNotFound);
}

TEST(QueryNvidiaSmi, NoDevicesWithNonZeroExitIsNoGpus) {
  FakeSmi smi;
  smi.answer = CommandOutput{6, "No devices were found\n"};
  auto gpus = QueryNvidiaSmi(smi.Runner(), std::chrono::milliseconds(1));
  ASSERT_TRUE(gpus.ok());
  EXPECT_TRUE(gpus->empty());
}

TEST(QueryNvidiaSmi, FailureQuotesItsFirstLine) {
  FakeSmi smi;
  smi.answer = CommandOutput{18,
                             "Failed to initialize NVML: Driver/library version mismatch\n"
                             "NVML library version: 535.183\n"};
  auto gpus = QueryNvidiaSmi(smi.Runner(), std::chrono::milliseconds(1));
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kUnavailable);
  EXPECT_EQ(gpus.status().message(),
            "nvidia-smi exited with code 18: Failed to initialize NVML: Driver/library version "
            "mismatch");
}

TEST(QueryNvidiaSmi, SilentFailureGivesTheCode) {
  FakeSmi smi;
  smi.answer = CommandOutput{137, ""};
  auto gpus = QueryNvidiaSmi(smi.Runner(), std::chrono::milliseconds(1));
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(), "nvidia-smi exited with code 137");
}

TEST(QueryNvidiaSmi, TimeoutIsUnavailable) {
  FakeSmi smi;
  smi.answer = Timeout("nvidia-smi did not finish within 10000 ms and was killed");
  auto gpus = QueryNvidiaSmi(smi.Runner(), std::chrono::milliseconds(10000));
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kUnavailable);
  EXPECT_EQ(gpus.status().message(),
            "nvidia-smi failed: nvidia-smi did not finish within 10000 ms and was killed");
}

}  // namespace
}  // namespace cw
