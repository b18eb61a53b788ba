#include "job/container_spec.h"

#include <unistd.h>

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ContainerSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    args_.id = 7;
    args_.user_pk = 3;
    args_.docker_image = "codalab/codalab-legacy:py37";
    env_.jobs_subfolder = "node";
  }

  // A job folder under a temporary BASE that the engine sees at /srv/codabench.
  JobFolder Folder() {
    auto dir = fs::temp_directory_path() / ("cw-spec-test-" + std::to_string(::getpid()));
    env_.base_dir = dir;
    env_.host_dir = "/srv/codabench";
    auto f = JobFolder::Create(env_, "job-7-");
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    cleanup_ = dir;
    return *f;
  }
  void TearDown() override {
    if (!cleanup_.empty()) fs::remove_all(cleanup_);
  }

  const Mount* Target(const ContainerSpec& spec, const std::string& target) {
    for (const Mount& m : spec.mounts) {
      if (m.container_path == target) return &m;
    }
    return nullptr;
  }

  RunArgs args_;
  JobEnvironment env_;
  fs::path cleanup_;
};

TEST_F(ContainerSpecTest, NamesAndLabelsAreThePythonWorkers) {
  JobFolder folder = Folder();
  env_.labels["org.codabench.slot"] = "1";
  ProgramContainer c = ProgramContainerSpec(args_, ProgramKind::kIngestion, "ingest", "abc",
                                            folder, env_, "");
  EXPECT_EQ(c.spec.name, "ingestion_uPK-3_sID-7");
  EXPECT_EQ(c.spec.labels.at(kLabelWorker), "codabench-worker");
  EXPECT_EQ(c.spec.labels.at(kLabelSubmission), "7");
  EXPECT_EQ(c.spec.labels.at(kLabelJob), "abc");
  EXPECT_EQ(c.spec.labels.at(kLabelKind), "ingestion");
  EXPECT_EQ(c.spec.labels.at(kLabelStage), "prediction");
  EXPECT_EQ(c.spec.labels.at("org.codabench.slot"), "1");
  args_.is_scoring = true;
  c = ProgramContainerSpec(args_, ProgramKind::kProgram, "score", "abc", folder, env_, "");
  EXPECT_EQ(c.spec.name, "scoring_uPK-3_sID-7");
  EXPECT_EQ(c.spec.labels.at(kLabelStage), "scoring");
  EXPECT_THAT(c.spec.cmd, ElementsAre("sh", "-c", "score"));
  EXPECT_EQ(c.spec.working_dir, "/app/program");
  EXPECT_EQ(c.spec.log_driver, "none");
}

TEST_F(ContainerSpecTest, MountsAreInTheEnginesViewAndTheirSourcesInOurs) {
  JobFolder folder = Folder();
  args_.input_data = "mem://data";
  ProgramContainer c = ProgramContainerSpec(args_, ProgramKind::kIngestion, "ingest", "abc",
                                            folder, env_, "");
  const std::string host_root =
      "/srv/codabench" + folder.root().string().substr(env_.base_dir.string().size());
  ASSERT_NE(Target(c.spec, "/app/program"), nullptr);
  EXPECT_EQ(Target(c.spec, "/app/program")->host_path, host_root + "/ingestion_program");
  EXPECT_EQ(Target(c.spec, "/app/ingested_program")->host_path, host_root + "/program");
  EXPECT_EQ(Target(c.spec, "/app/output")->host_path, host_root + "/output");
  EXPECT_TRUE(Target(c.spec, "/app/data")->read_only);
  EXPECT_NE(Target(c.spec, "/app/input_data"), nullptr);
  EXPECT_EQ(Target(c.spec, "/app/input"), nullptr);  // prediction: no scoring input
  EXPECT_EQ(Target(c.spec, "/app/shared"), nullptr);
  EXPECT_EQ(c.mount_sources.size(), c.spec.mounts.size());
  EXPECT_THAT(c.mount_sources, Contains(folder.program(ProgramKind::kIngestion)));

  args_.is_scoring = true;
  args_.ingestion_only_during_scoring = true;
  env_.container.extra_mounts = {{"/srv/eval", "/eval-program", true}};
  c = ProgramContainerSpec(args_, ProgramKind::kIngestion, "ingest", "abc", folder, env_, "");
  EXPECT_EQ(Target(c.spec, "/app/ingested_program")->host_path, host_root + "/input/res");
  EXPECT_EQ(Target(c.spec, "/app/input")->host_path, host_root + "/input");
  EXPECT_EQ(Target(c.spec, "/app/shared")->host_path, host_root + "/shared");
  EXPECT_EQ(Target(c.spec, "/eval-program")->host_path, "/srv/eval");
  // The admin's mounts are the engine's paths already: nothing to create.
  EXPECT_EQ(c.mount_sources.size() + 1, c.spec.mounts.size());
}

TEST_F(ContainerSpecTest, EnvironmentHasTheProxiesAndTheSlots) {
  JobFolder folder = Folder();
  env_.container.http_proxy = "http://proxy:3128";
  env_.container.env = {"NVIDIA_VISIBLE_DEVICES=GPU-1"};
  ProgramContainer c =
      ProgramContainerSpec(args_, ProgramKind::kProgram, "run", "abc", folder, env_, "");
  EXPECT_THAT(c.spec.env, ElementsAre("PYTHONUNBUFFERED=1", "http_proxy=http://proxy:3128",
                                      "HTTP_PROXY=http://proxy:3128",
                                      "NVIDIA_VISIBLE_DEVICES=GPU-1"));
}

TEST_F(ContainerSpecTest, SecurityOptionsAndLimits) {
  JobFolder folder = Folder();
  env_.container.podman = true;
  env_.container.pids_limit = 4096;
  env_.container.nofile_limit = 65536;
  env_.container.memory_bytes = 2LL << 30;
  ProgramContainer c =
      ProgramContainerSpec(args_, ProgramKind::kProgram, "run", "abc", folder, env_, "");
  EXPECT_THAT(c.spec.security_opt, ElementsAre("no-new-privileges", "label=disable"));
  EXPECT_EQ(c.spec.cap_drop, DroppedCapabilities());
  EXPECT_THAT(c.spec.cap_drop, Contains("SETUID"));
  EXPECT_EQ(c.spec.pids_limit, 4096);
  EXPECT_EQ(c.spec.nofile_limit, 65536);
  EXPECT_EQ(c.spec.memory_bytes, 2LL << 30);
  EXPECT_THAT(ContainerSecurityOptions(ContainerOptions{}), ElementsAre("no-new-privileges"));
}

TEST_F(ContainerSpecTest, EveryProgramRunsUnderTheRuntime) {
  JobFolder folder = Folder();
  EXPECT_THAT(
      ProgramContainerSpec(args_, ProgramKind::kProgram, "run", "abc", folder, env_, "").spec.runtime,
      IsEmpty());
  env_.container.runtime = "runsc";
  for (bool scoring : {false, true}) {
    args_.is_scoring = scoring;
    for (ProgramKind kind : {ProgramKind::kIngestion, ProgramKind::kProgram}) {
      EXPECT_EQ(ProgramContainerSpec(args_, kind, "run", "abc", folder, env_, "").spec.runtime,
                "runsc");
    }
  }
}

TEST_F(ContainerSpecTest, NetworkModeUnlessTheNetworkIsOff) {
  JobFolder folder = Folder();
  ProgramContainer c = ProgramContainerSpec(args_, ProgramKind::kProgram, "run", "abc", folder,
                                            env_, "container:holder");
  EXPECT_EQ(c.spec.network_mode, "container:holder");
  EXPECT_FALSE(c.spec.network_disabled);
  env_.container.network_disabled = true;
  c = ProgramContainerSpec(args_, ProgramKind::kProgram, "run", "abc", folder, env_,
                           "container:holder");
  EXPECT_TRUE(c.spec.network_disabled);
  EXPECT_THAT(c.spec.network_mode, IsEmpty());
}

TEST(ProgramLabelTest, NamesEachProgramAsMessagesDo) {
  EXPECT_EQ(ProgramLabel(ProgramKind::kIngestion, false), "ingestion program");
  EXPECT_EQ(ProgramLabel(ProgramKind::kProgram, false), "submission");
  EXPECT_EQ(ProgramLabel(ProgramKind::kProgram, true), "scoring program");
}

}  // namespace
}  // namespace cw
