#include "engine/oci_runtime.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

EngineInfo DockerWithRunsc(std::vector<std::string> runsc_args = {"--network=host"}) {
  EngineInfo info;
  info.runtimes = {"runc", "runsc"};
  info.default_runtime = "runc";
  info.runtime_details["runc"] = {"runc", {}};
  info.runtime_details["runsc"] = {"/usr/bin/runsc", std::move(runsc_args)};
  return info;
}

bool Mentions(const Status& st, const std::string& text) {
  return st.message().find(text) != std::string::npos;
}

TEST(OciRuntime, KnownRuntimesAndTheDefaultPass) {
  EngineInfo info = DockerWithRunsc();
  EXPECT_TRUE(CheckRuntimeKnown(info, "").ok());
  EXPECT_TRUE(CheckRuntimeKnown(info, "runsc").ok());
  EXPECT_TRUE(CheckRuntimeKnown(EngineInfo{}, "runsc").ok());  // lists none: not judged
}

TEST(OciRuntime, AnUnknownOneNamesTheSettingAndTheEnginesRuntimes) {
  Status st = CheckRuntimeKnown(DockerWithRunsc(), "kata");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInvalidInput);
  EXPECT_TRUE(Mentions(st, "CONTAINER_RUNTIME is 'kata'")) << st.message();
  EXPECT_TRUE(Mentions(st, "runc, runsc")) << st.message();
}

TEST(OciRuntime, GvisorByItsProgramOrName) {
  EngineInfo info = DockerWithRunsc();
  info.runtimes.push_back("gvisor");
  info.runtime_details["gvisor"] = {"/opt/gvisor/runsc", {}};
  EXPECT_TRUE(IsGvisorRuntime(info, "runsc"));
  EXPECT_TRUE(IsGvisorRuntime(info, "gvisor"));
  EXPECT_FALSE(IsGvisorRuntime(info, "runc"));
  EXPECT_FALSE(IsGvisorRuntime(info, ""));
  EXPECT_TRUE(IsGvisorRuntime(EngineInfo{}, "runsc"));  // no details: by its name
}

TEST(OciRuntime, GpusUnderGvisorNeedNvproxy) {
  Status st = CheckRuntimeServesGpus(DockerWithRunsc(), "runsc");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Mentions(st, "--nvproxy")) << st.message();
  EXPECT_TRUE(Mentions(st, "CONTAINER_RUNTIME")) << st.message();
  EXPECT_TRUE(CheckRuntimeServesGpus(DockerWithRunsc({"--network=host", "--nvproxy"}), "runsc").ok());
  EXPECT_TRUE(CheckRuntimeServesGpus(DockerWithRunsc(), "runc").ok());
  EXPECT_TRUE(CheckRuntimeServesGpus(DockerWithRunsc(), "").ok());
}

TEST(OciRuntime, Description) {
  EngineInfo info = DockerWithRunsc();
  EXPECT_EQ(DescribeRuntime(info, "runsc"), "runsc (/usr/bin/runsc --network=host)");
  EXPECT_EQ(DescribeRuntime(info, ""), "the engine's default (runc)");
  EXPECT_EQ(DescribeRuntime(EngineInfo{}, "runsc"), "runsc");
}

TEST(OciRuntime, AtStart) {
  const Result<EngineInfo> docker = DockerWithRunsc();
  auto ok = CheckContainerRuntime(docker, "runsc", /*gpus=*/false);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, "runsc (/usr/bin/runsc --network=host)");
  EXPECT_FALSE(CheckContainerRuntime(docker, "kata", false).ok());
  EXPECT_FALSE(CheckContainerRuntime(docker, "runsc", /*gpus=*/true).ok());
  EXPECT_TRUE(CheckContainerRuntime(docker, "", /*gpus=*/true).ok());

  const Result<EngineInfo> mute = Unavailable("no /info");
  auto unchecked = CheckContainerRuntime(mute, "runsc", false);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_NE(unchecked->find("not checked"), std::string::npos);
}

}  // namespace
}  // namespace cw
