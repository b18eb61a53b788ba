#include "gpu/container_options.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(ContainerOptionsFromConfig, CarriesTheSettings) {
  WorkerConfig c;
  c.network_disabled = true;
  c.container_http_proxy = "http://p:1";
  c.container_https_proxy = "http://p:2";
  c.container_engine = "podman";
  auto o = ContainerOptionsFromConfig(c);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->network_disabled);
  EXPECT_EQ(o->http_proxy, "http://p:1");
  EXPECT_EQ(o->https_proxy, "http://p:2");
  EXPECT_TRUE(o->podman);
  EXPECT_TRUE(o->device_requests.empty());  // USE_GPU is off
  EXPECT_EQ(o->pids_limit, 4096);
  EXPECT_EQ(o->nofile_limit, 0);  // podman's runc refuses the nproc limit it would add
}

TEST(ContainerOptionsFromConfig, DockerGetsThePidsAndOpenFileLimits) {
  WorkerConfig c;
  auto o = ContainerOptionsFromConfig(c);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->pids_limit, 4096);
  EXPECT_EQ(o->nofile_limit, 16384);
}

TEST(ContainerOptionsFromConfig, CarriesTheRuntime) {
  WorkerConfig c;
  EXPECT_EQ(ContainerOptionsFromConfig(c)->runtime, "");
  c.container_runtime = "runsc";
  EXPECT_EQ(ContainerOptionsFromConfig(c)->runtime, "runsc");
}

TEST(ContainerOptionsFromConfig, GpuDeviceBecomesACdiRequest) {
  WorkerConfig c;
  c.use_gpu = true;
  c.gpu_device = "nvidia.com/gpu=all";
  auto o = ContainerOptionsFromConfig(c);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->device_requests.size(), 1u);
  EXPECT_EQ(o->device_requests[0].driver, "cdi");
  EXPECT_EQ(o->device_requests[0].device_ids, std::vector<std::string>{"nvidia.com/gpu=all"});
}

TEST(ContainerOptionsFromConfig, BadGpuDeviceNamesTheSetting) {
  WorkerConfig c;
  c.use_gpu = true;
  c.gpu_device = "0";
  auto o = ContainerOptionsFromConfig(c);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("GPU_DEVICE"), std::string::npos);
}

}  // namespace
}  // namespace cw
