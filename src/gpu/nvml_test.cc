#include "gpu/nvml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gpu/gpu_info.h"
#include "gpu/test_gpus.h"

namespace cw {
namespace {

using testing::FakeNvml;
using ::testing::HasSubstr;

TEST(QueryNvml, ListsEveryGpuAndShutsDown) {
  FakeNvml fake;
  fake.gpus = testing::EightH100();
  auto gpus = QueryNvml(fake.Library());
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 8u);
  EXPECT_EQ((*gpus)[3].index, 3);
  EXPECT_EQ((*gpus)[3].uuid, testing::FakeUuid(3));
  EXPECT_EQ((*gpus)[3].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ((*gpus)[3].memory_total_bytes, testing::kH100Bytes);
  EXPECT_EQ(fake.inits, 1);
  EXPECT_EQ(fake.shutdowns, 1);
}

TEST(QueryNvml, NoGpusIsAnEmptyList) {
  FakeNvml fake;
  auto gpus = QueryNvml(fake.Library());
  ASSERT_TRUE(gpus.ok());
  EXPECT_TRUE(gpus->empty());
}

TEST(QueryNvml, InitFailureSaysWhyAndDoesNotShutDown) {
  FakeNvml fake;
  fake.init_rc = 18;
  auto gpus = QueryNvml(fake.Library());
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kUnavailable);
  EXPECT_EQ(gpus.status().message(),
            "NVML could not start: Driver/library version mismatch (NVML error 18)");
  EXPECT_EQ(fake.shutdowns, 0);
}

TEST(QueryNvml, CountFailureShutsDown) {
  FakeNvml fake;
  fake.count_rc = 9;
  auto gpus = QueryNvml(fake.Library());
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(),
            "NVML could not count the GPUs: Driver Not Loaded (NVML error 9)");
  EXPECT_EQ(fake.shutdowns, 1);
}

TEST(QueryNvml, LostGpuFailsTheQuery) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  fake.handle_rc = 15;
  auto gpus = QueryNvml(fake.Library());
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(), "NVML could not open GPU 0: GPU is lost (NVML error 15)");
  EXPECT_EQ(fake.shutdowns, 1);
}

TEST(QueryNvml, MissingUuidFailsTheQuery) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  fake.uuid_rc = 999;
  auto gpus = QueryNvml(fake.Library());
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(),
            "NVML could not read the UUID of GPU 0: Unknown Error (NVML error 999)");
}

TEST(QueryNvml, UnsupportedMemoryQueryLeavesMemoryUnknown) {
  FakeNvml fake;
  fake.gpus = testing::TwoGpuBox();
  fake.memory_rc = 3;  // NVML_ERROR_NOT_SUPPORTED
  auto gpus = QueryNvml(fake.Library());
  ASSERT_TRUE(gpus.ok());
  EXPECT_EQ((*gpus)[1].memory_total_bytes, 0u);
  EXPECT_EQ((*gpus)[1].name, "NVIDIA RTX A6000");
}

TEST(QueryNvml, IncompleteTableIsABug) {
  NvmlLibrary empty;
  auto gpus = QueryNvml(empty);
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), Code::kInternal);
}

TEST(QueryNvml, NoErrorStringFunctionStillExplains) {
  FakeNvml fake;
  fake.init_rc = 18;
  NvmlLibrary lib = fake.Library();
  lib.error_string = nullptr;
  auto gpus = QueryNvml(lib);
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(), "NVML could not start: unknown error (NVML error 18)");
}

TEST(LoadNvml, MissingLibraryIsNotFound) {
  auto lib = LoadNvml("libcw-no-such-nvml.so.1");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), Code::kNotFound);
  EXPECT_THAT(lib.status().message(), HasSubstr("libcw-no-such-nvml.so.1 could not be loaded"));
}

TEST(LoadNvml, LibraryWithoutTheSymbolsIsUnavailable) {
  auto lib = LoadNvml("libc.so.6");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), Code::kUnavailable);
  EXPECT_EQ(
      lib.status().message(),
      "libc.so.6 has no nvmlInit_v2 (an NVIDIA driver older than NVML v2; update the driver)");
}

}  // namespace
}  // namespace cw
