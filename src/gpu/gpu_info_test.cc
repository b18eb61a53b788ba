#include "gpu/gpu_info.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gpu/test_gpus.h"

namespace cw {
namespace {

using testing::FakeNvml;
using ::testing::HasSubstr;

// Discovery options with a fake NVML (or a failing loader) and a fake nvidia-smi.
struct Fakes {
  FakeNvml nvml;
  Status load_failure;  // not OK = the loader fails with it
  Result<CommandOutput> smi = NotFound("nvidia-smi is not installed (not found in PATH)");
  int smi_calls = 0;
  std::vector<std::string> logged;

  GpuDiscoveryOptions Options() {
    GpuDiscoveryOptions o;
    o.load_nvml = [this]() -> Result<NvmlLibrary> {
      if (!load_failure.ok()) return load_failure;
      return nvml.Library();
    };
    o.run_command = [this](const std::vector<std::string>&, std::chrono::milliseconds) {
      ++smi_calls;
      return smi;
    };
    o.log = [this](const std::string& line) { logged.push_back(line); };
    return o;
  }
};

const Status kNoLibrary = NotFound(
    "libnvidia-ml.so.1 could not be loaded: libnvidia-ml.so.1: cannot open shared "
    "object file: No such file or directory");

TEST(DiscoverGpus, NvmlAnswersAndNvidiaSmiIsNotAsked) {
  Fakes f;
  f.nvml.gpus = testing::EightH100();
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  EXPECT_EQ(gpus->size(), 8u);
  EXPECT_EQ(f.smi_calls, 0);
  EXPECT_TRUE(f.logged.empty());
}

TEST(DiscoverGpus, NvmlInitFailureFallsBackToNvidiaSmi) {
  Fakes f;
  f.nvml.gpus = testing::EightH100();
  f.nvml.init_rc = 18;
  f.smi = CommandOutput{0, "1, GPU-b, Tesla T4, 15360\n0, GPU-a, Tesla T4, 15360\n"};
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[0].uuid, "GPU-a");  // sorted by index
  EXPECT_EQ(f.smi_calls, 1);
  ASSERT_EQ(f.logged.size(), 1u);
  EXPECT_EQ(f.logged[0],
            "NVML: NVML could not start: Driver/library version mismatch (NVML error 18); asking "
            "nvidia-smi");
}

TEST(DiscoverGpus, DlopenFailureFallsBackToNvidiaSmi) {
  Fakes f;
  f.load_failure = kNoLibrary;
  f.smi = CommandOutput{0, "0, GPU-a, Tesla T4, 15360\n"};
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  EXPECT_EQ(gpus->size(), 1u);
  EXPECT_EQ(f.smi_calls, 1);
}

TEST(DiscoverGpus, NeitherInstalledIsNoGpusNotAnError) {
  Fakes f;
  f.load_failure = kNoLibrary;
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  EXPECT_TRUE(gpus->empty());
  ASSERT_EQ(f.logged.size(), 2u);
  EXPECT_THAT(f.logged[1], HasSubstr("this machine has no NVIDIA GPUs to offer"));
}

TEST(DiscoverGpus, NvmlWithNoGpusIsTrusted) {
  Fakes f;
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_TRUE(gpus.ok());
  EXPECT_TRUE(gpus->empty());
  EXPECT_EQ(f.smi_calls, 0);
}

TEST(DiscoverGpus, BrokenNvmlAndNoNvidiaSmiIsAnError) {
  Fakes f;
  f.nvml.init_rc = 9;
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kUnavailable);
  EXPECT_EQ(gpus.status().message(),
            "GPU discovery failed. NVML: NVML could not start: Driver Not Loaded (NVML error 9). "
            "nvidia-smi: not installed. Check the NVIDIA driver (does nvidia-smi work on this "
            "machine?)");
}

TEST(DiscoverGpus, NoNvmlAndBrokenNvidiaSmiIsAnError) {
  Fakes f;
  f.load_failure = kNoLibrary;
  f.smi = CommandOutput{9,
                        "NVIDIA-SMI has failed because it couldn't communicate with the "
                        "NVIDIA driver.\n"};
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(),
            "GPU discovery failed. NVML: not installed. nvidia-smi: nvidia-smi exited with code 9: "
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Check "
            "the NVIDIA driver (does nvidia-smi work on this machine?)");
}

TEST(DiscoverGpus, NvmlWithoutSymbolsCountsAsBroken) {
  Fakes f;
  f.load_failure = Unavailable("libnvidia-ml.so.1 has no nvmlInit_v2 (update the driver)");
  f.smi = Timeout("nvidia-smi did not finish within 10000 ms and was killed");
  auto gpus = DiscoverGpus(f.Options());
  ASSERT_FALSE(gpus.ok());
  EXPECT_THAT(gpus.status().message(), HasSubstr("NVML: libnvidia-ml.so.1 has no nvmlInit_v2"));
  EXPECT_THAT(gpus.status().message(), HasSubstr("did not finish within 10000 ms"));
}

TEST(DiscoverGpus, PassesTheTimeoutToNvidiaSmi) {
  Fakes f;
  f.load_failure = kNoLibrary;
  GpuDiscoveryOptions o = f.Options();
  o.nvidia_smi_timeout = std::chrono::milliseconds(1234);
  std::chrono::milliseconds seen{0};
  o.run_command = [&](const std::vector<std::string>&, std::chrono::milliseconds t) {
    seen = t;
    return Result<CommandOutput>(CommandOutput{0, ""});
  };
  ASSERT_TRUE(DiscoverGpus(o).ok());
  EXPECT_EQ(seen, std::chrono::milliseconds(1234));
}

TEST(DescribeGpus, OneLineForLogs) {
  EXPECT_EQ(DescribeGpus({}), "no GPUs");
  std::vector<GpuInfo> one = {{0, "GPU-8f6c1a2b-0000-1111-2222-333344445555",
                               "NVIDIA H100 80GB HBM3", testing::kH100Bytes}};
  EXPECT_EQ(DescribeGpus(one), "1 GPU: 0 NVIDIA H100 80GB HBM3 (GPU-8f6c1a2b..., 79.6 GiB)");
  EXPECT_EQ(DescribeGpus(testing::TwoGpuBox()),
            "2 GPUs: 0 NVIDIA GeForce RTX 4090 (GPU-0b9a7f4e..., 24.0 GiB); "
            "1 NVIDIA RTX A6000 (GPU-1c8b6e3d..., 48.0 GiB)");
  EXPECT_EQ(DescribeGpus({{3, "GPU-a", "", 0}}), "1 GPU: 3 unnamed GPU (GPU-a, memory unknown)");
  EXPECT_EQ(DescribeGpus({{0, "", "X", 0}}), "1 GPU: 0 X (no UUID, memory unknown)");
}

}  // namespace
}  // namespace cw
