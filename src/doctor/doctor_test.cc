#include "doctor/doctor.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "gpu/test_gpus.h"
#include "job/test_fakes.h"

namespace cw {
namespace {

using ::testing::HasSubstr;
using Level = DoctorCheck::Level;
namespace fs = std::filesystem;

constexpr const char* kImage = "codalab/codalab-legacy:py37";

// The fake engine, plus what `doctor` asks besides running containers.
class DoctorEngine : public testing::FakeEngine {
 public:
  Status version_status;
  Status registry_status;
  EngineInfo info;
  std::vector<std::string> registry_asked;

  Result<std::string> Version() override {
    if (!version_status.ok()) return version_status;
    return std::string("Docker 28.2.2 (API 1.50)");
  }
  Result<EngineInfo> Info() override { return info; }
  long long store_bytes = -1;  // -1: the engine cannot say
  Result<long long> ImageStoreBytes() override {
    if (store_bytes < 0) return Unavailable("no disk usage here");
    return store_bytes;
  }
  Status CheckRegistry(const std::string& image) override {
    registry_asked.push_back(image);
    return registry_status;
  }
};

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw-doctor-" + RandomHex(4));
    fs::create_directories(dir_);
    config_.broker_url = "pyamqp://alice:s3cret@broker.example:5672/queue7";
    config_.host_directory = dir_;
    config_.base_directory = dir_;
    engine_.info.ncpu = 16;
    engine_.info.mem_total_bytes = 64LL << 30;
    engine_.images.insert(kImage);
    // The probe containers: `cat` of the marker through the mount, nvidia-smi -L.
    engine_.programs["doctor"] = [this](const ContainerSpec& spec, const OutputFn& out,
                                        const std::atomic<bool>&) {
      if (spec.cmd[0] == "cat") {
        fs::path host = spec.mounts.at(0).host_path;
        if (!engine_sees_host_dir_) host = "/elsewhere";
        std::ifstream f(host / fs::path(spec.cmd[1]).filename());
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (!f) return 1;
        out(StreamKind::kStdout, text);
        return 0;
      }
      if (spec.cmd[0] == "nvidia-smi") {
        if (spec.device_requests.empty()) return 127;
        for (std::size_t i = 0; i < container_gpus_; ++i) {
          out(StreamKind::kStdout, "GPU " + std::to_string(i) + ": NVIDIA H100 80GB HBM3 (UUID: " +
                                       testing::FakeUuid(static_cast<int>(i)) + ")\n");
        }
        return 0;
      }
      return 127;
    };
    deps_.engine = &engine_;
    deps_.discover_gpus = [this]() -> Result<std::vector<GpuInfo>> { return gpus_; };
    deps_.probe_broker = [this](const BrokerAddress& a) -> Result<BrokerProbe> {
      broker_asked_ = a;
      if (!broker_status_.ok()) return broker_status_;
      return BrokerProbe{true, 3, 1};
    };
    deps_.disk_space = [this](const fs::path&) -> Result<DiskSpace> { return disk_; };
    deps_.output_limit = [this](const WorkerConfig&) { return output_limit_; };
    options_.socket = "unix:///var/run/docker.sock";
  }
  void TearDown() override { fs::remove_all(dir_); }

  const DoctorCheck& Find(const std::vector<DoctorCheck>& checks, const std::string& name) {
    for (const DoctorCheck& c : checks) {
      if (c.name == name) return c;
    }
    static DoctorCheck none{"(missing)", Level::kSkip, "", ""};
    ADD_FAILURE() << "no check named " << name;
    return none;
  }
  std::vector<DoctorCheck> Run() { return RunDoctor(config_, options_, deps_); }

  fs::path dir_;
  WorkerConfig config_;
  DoctorEngine engine_;
  DoctorDeps deps_;
  DoctorOptions options_;
  std::vector<GpuInfo> gpus_;
  std::size_t container_gpus_ = 1;
  bool engine_sees_host_dir_ = true;
  Status broker_status_;
  BrokerAddress broker_asked_;
  DiskSpace disk_{500ull << 30, 1000ull << 30};
  OutputLimitChoice output_limit_{true, "MAX_OUTPUT_SIZE_GB is held by the kernel"};
};

TEST_F(DoctorTest, HealthyCpuHostPassesEveryCheck) {
  auto checks = Run();
  for (const DoctorCheck& c : checks) {
    EXPECT_TRUE(c.level == Level::kOk) << FormatCheck(c);
  }
  EXPECT_THAT(Find(checks, "engine").detail, HasSubstr("Docker 28.2.2 (API 1.50) at unix://"));
  EXPECT_THAT(Find(checks, "engine").detail, HasSubstr("16 CPUs, 64.0 GiB"));
  EXPECT_THAT(Find(checks, "images").detail, HasSubstr("(on this machine)"));
  EXPECT_THAT(Find(checks, "gpus").detail, HasSubstr("no GPUs"));
  EXPECT_THAT(Find(checks, "host directory").detail, HasSubstr("the engine sees the same folder"));
  EXPECT_THAT(Find(checks, "host directory").detail, HasSubstr("500.0 GiB free"));
  const DoctorCheck& broker = Find(checks, "broker");
  EXPECT_THAT(broker.detail, HasSubstr("broker.example:5672/queue7"));
  EXPECT_THAT(broker.detail, HasSubstr("3 waiting, 1 worker(s)"));
  EXPECT_EQ(broker.detail.find("s3cret"), std::string::npos);  // never the password
  EXPECT_EQ(broker_asked_.user, "alice");
  EXPECT_EQ(broker_asked_.vhost, "queue7");
  // The probe containers are gone, and so is the marker file.
  EXPECT_EQ(engine_.live_containers(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(DoctorTest, ARootlessEngineOnCgroupsV1WarnsThatItsLimitsAreNotEnforced) {
  engine_.info.rootless = true;
  engine_.info.cgroup_version = "1";
  auto checks = Run();
  const DoctorCheck& c = Find(checks, "limits");
  EXPECT_EQ(c.level, Level::kWarn);
  EXPECT_THAT(c.detail, HasSubstr("CONTAINER_MEMORY"));
  EXPECT_THAT(c.detail, HasSubstr("not enforced"));
  EXPECT_THAT(c.fix, HasSubstr("cgroups v2"));
  // On cgroups v2 they hold: no line.
  engine_.info.cgroup_version = "2";
  for (const DoctorCheck& line : Run()) EXPECT_NE(line.name, "limits") << FormatCheck(line);
}

TEST_F(DoctorTest, AnOutputLimitOnlyTheWalkHoldsIsAWarningSayingWhatItMisses) {
  output_limit_ = {false, "MAX_OUTPUT_SIZE_GB is measured by walking: the worker is not root"};
  auto checks = Run();
  const DoctorCheck& c = Find(checks, "output limit");
  EXPECT_EQ(c.level, Level::kWarn);
  EXPECT_THAT(c.detail, HasSubstr("walking"));
  EXPECT_THAT(c.fix, HasSubstr("root"));
}

TEST_F(DoctorTest, DeadEngineFailsWithWhatToDoAndSkipsWhatNeedsIt) {
  engine_.version_status = Unavailable("cannot connect to /var/run/docker.sock: No such file");
  auto checks = Run();
  const DoctorCheck& e = Find(checks, "engine");
  EXPECT_EQ(e.level, Level::kFail);
  EXPECT_THAT(e.detail, HasSubstr("No such file"));
  EXPECT_THAT(e.fix, HasSubstr("-v /var/run/docker.sock:/var/run/docker.sock"));
  EXPECT_EQ(Find(checks, "images").level, Level::kSkip);
  EXPECT_EQ(Find(checks, "broker").level, Level::kOk);  // the rest is still checked
}

TEST_F(DoctorTest, UnreachableRegistryIsAWarningNotAFailure) {
  engine_.registry_status = Unavailable("Get https://registry-1.docker.io/v2/: dial tcp: timeout");
  options_.image = "python:3.12";
  auto checks = Run();
  const DoctorCheck& i = Find(checks, "images");
  EXPECT_EQ(i.level, Level::kWarn);
  EXPECT_THAT(i.detail, HasSubstr("python:3.12 (not on this machine yet)"));
  EXPECT_THAT(i.detail, HasSubstr("dial tcp"));
  EXPECT_THAT(i.fix, HasSubstr("only images already on this machine"));
  EXPECT_EQ(engine_.registry_asked, std::vector<std::string>{"python:3.12"});
}

TEST_F(DoctorTest, WarnsWhenSlotsShareTheHostsIpc) {
  gpus_ = testing::EightH100();
  config_.gpus_per_slot = "1";
  config_.gpu_driver = "nvidia";
  config_.container_ipc = "host";
  engine_.info.ncpu = 64;
  auto checks = Run();
  const DoctorCheck& ipc = Find(checks, "ipc");
  EXPECT_EQ(ipc.level, Level::kWarn);
  EXPECT_THAT(ipc.detail, HasSubstr("8 slots"));
  EXPECT_THAT(ipc.fix, HasSubstr("CONTAINER_SHM_SIZE"));
}

TEST_F(DoctorTest, NoIpcWarningForOneSlot) {
  config_.container_ipc = "host";
  auto checks = Run();
  for (const DoctorCheck& c : checks) EXPECT_NE(c.name, "ipc") << FormatCheck(c);
}

TEST_F(DoctorTest, ShowsTheImageStoreAndCacheAgainstTheirBudgets) {
  engine_.store_bytes = 12'500'000'000;
  auto checks = Run();
  const DoctorCheck& unbudgeted = Find(checks, "disk budgets");
  EXPECT_EQ(unbudgeted.level, Level::kWarn);
  EXPECT_THAT(unbudgeted.detail, HasSubstr("image store 12.5 GB, no budget"));
  EXPECT_THAT(unbudgeted.detail, HasSubstr("MAX_CACHE_DIR_SIZE_GB=10.0 GB"));
  EXPECT_THAT(unbudgeted.fix, HasSubstr("MAX_IMAGE_STORE_GB"));

  config_.max_image_store_gb = 10;
  auto budgeted = Run();
  const DoctorCheck& over = Find(budgeted, "disk budgets");
  EXPECT_EQ(over.level, Level::kOk);
  EXPECT_THAT(over.detail, HasSubstr("of MAX_IMAGE_STORE_GB=10.0 GB (over"));
}

TEST_F(DoctorTest, EightGpuHostWithOneGpuPerSlot) {
  gpus_ = testing::EightH100();
  config_.gpus_per_slot = "1";
  config_.gpu_driver = "nvidia";
  engine_.info.ncpu = 64;
  auto checks = Run();
  for (const DoctorCheck& c : checks) EXPECT_EQ(c.level, Level::kOk) << FormatCheck(c);
  EXPECT_THAT(Find(checks, "gpus").detail, HasSubstr("8 GPUs"));
  const DoctorCheck& slots = Find(checks, "slots");
  EXPECT_THAT(slots.detail, HasSubstr("8 slots"));
  EXPECT_THAT(slots.detail, HasSubstr("slot 7: GPU 7 (" + testing::FakeUuid(7) + "), CPUs 56-63"));
  const DoctorCheck& rt = Find(checks, "gpu runtime");
  EXPECT_THAT(rt.detail, HasSubstr("sees 1 GPU(s) through the nvidia driver"));
  // The probe asked for slot 0's GPU only.
  bool probed = false;
  for (const ContainerSpec& s : engine_.created) {
    if (s.cmd[0] != "nvidia-smi") continue;
    probed = true;
    ASSERT_EQ(s.device_requests.size(), 1u);
    EXPECT_EQ(s.device_requests[0].device_ids, std::vector<std::string>{testing::FakeUuid(0)});
  }
  EXPECT_TRUE(probed);
}

TEST_F(DoctorTest, ContainerSeeingMoreGpusThanItsSlotFails) {
  gpus_ = testing::EightH100();
  config_.gpus_per_slot = "1";
  container_gpus_ = 8;  // e.g. a default nvidia runtime ignoring the request
  auto checks = Run();
  const DoctorCheck& rt = Find(checks, "gpu runtime");
  EXPECT_EQ(rt.level, Level::kFail);
  EXPECT_THAT(rt.detail, HasSubstr("owns 1 GPU(s) but its container sees 8"));
}

TEST_F(DoctorTest, GpuRequestTheEngineCannotServeFailsWithTheFixForTheDriver) {
  gpus_ = testing::TwoGpuBox();
  config_.use_gpu = true;
  engine_.start_status = Internal("could not select device driver \"cdi\" with capabilities: []");
  auto checks = Run();
  const DoctorCheck& rt = Find(checks, "gpu runtime");
  EXPECT_EQ(rt.level, Level::kFail);
  EXPECT_THAT(rt.detail, HasSubstr("could not select device driver"));
  EXPECT_THAT(rt.fix, HasSubstr("nvidia-ctk cdi generate"));
  EXPECT_EQ(engine_.live_containers(), 0u);
}

TEST_F(DoctorTest, GpuRuntimeIsNotTriedWithoutTheImage) {
  gpus_ = testing::TwoGpuBox();
  config_.use_gpu = true;
  engine_.images.clear();
  auto checks = Run();
  const DoctorCheck& rt = Find(checks, "gpu runtime");
  EXPECT_EQ(rt.level, Level::kWarn);  // CDI asked, and the engine lists no CDI folders
  EXPECT_THAT(rt.detail, HasSubstr("not tried"));
  EXPECT_THAT(rt.detail, HasSubstr("no CDI spec folders"));
  EXPECT_THAT(rt.fix, HasSubstr("--image"));
  EXPECT_TRUE(engine_.created.empty());
}

TEST_F(DoctorTest, GpusAskedButNoneSeen) {
  config_.gpus_per_slot = "1";
  auto checks = Run();
  EXPECT_EQ(Find(checks, "gpus").level, Level::kFail);
  EXPECT_THAT(Find(checks, "gpus").fix, HasSubstr("--gpus all"));
  EXPECT_EQ(Find(checks, "slots").level, Level::kFail);

  config_.gpus_per_slot.clear();
  config_.use_gpu = true;
  checks = Run();
  EXPECT_EQ(Find(checks, "gpus").level, Level::kWarn);
  EXPECT_THAT(Find(checks, "gpus").detail, HasSubstr("GPU_DEVICE=nvidia.com/gpu=all"));
  EXPECT_EQ(Find(checks, "slots").level, Level::kOk);
}

TEST_F(DoctorTest, BrokenGpuDriverFailsAGpuWorker) {
  deps_.discover_gpus = []() -> Result<std::vector<GpuInfo>> {
    return Unavailable("NVML: Driver/library version mismatch");
  };
  config_.use_gpu = true;
  auto checks = Run();
  EXPECT_EQ(Find(checks, "gpus").level, Level::kFail);
  EXPECT_THAT(Find(checks, "gpus").detail, HasSubstr("version mismatch"));
}

TEST_F(DoctorTest, WorkerContainerWithTheWrongHostDirectory) {
  engine_sees_host_dir_ = false;
  auto checks = Run();
  const DoctorCheck& h = Find(checks, "host directory");
  EXPECT_EQ(h.level, Level::kFail);
  EXPECT_THAT(h.detail, HasSubstr("is not this folder"));
  EXPECT_THAT(h.fix, HasSubstr("-v HOST_DIRECTORY:/codabench"));
}

TEST_F(DoctorTest, FullHostDirectoryWarns) {
  disk_ = {2ull << 30, 100ull << 30};
  auto checks = Run();
  EXPECT_EQ(Find(checks, "host directory").level, Level::kWarn);
  EXPECT_THAT(Find(checks, "host directory").detail, HasSubstr("2.0 GiB free of 100.0 GiB"));
  EXPECT_THAT(Find(checks, "host directory").fix, HasSubstr("MAX_CACHE_DIR_SIZE_GB"));
}

TEST_F(DoctorTest, UnwritableHostDirectoryFails) {
  // Not even root may create files under /proc.
  config_.base_directory = config_.host_directory = "/proc/cw-doctor-no-such-dir";
  auto checks = Run();
  EXPECT_EQ(Find(checks, "host directory").level, Level::kFail);
  EXPECT_THAT(Find(checks, "host directory").detail, HasSubstr("cannot write to /proc/"));
  EXPECT_THAT(Find(checks, "host directory").fix, HasSubstr("chown"));
}

TEST_F(DoctorTest, BrokerProblems) {
  config_.broker_url.clear();
  auto checks = Run();
  EXPECT_EQ(Find(checks, "broker").level, Level::kFail);
  EXPECT_THAT(Find(checks, "broker").detail, HasSubstr("BROKER_URL is not set"));

  config_.broker_url = "pyamqp://alice:s3cret@broker.example:5672/queue7";
  broker_status_ = PermissionDenied("ACCESS_REFUSED - Login was refused");
  checks = Run();
  const DoctorCheck& b = Find(checks, "broker");
  EXPECT_EQ(b.level, Level::kFail);
  EXPECT_THAT(b.detail, HasSubstr("Login was refused"));
  EXPECT_EQ(b.detail.find("s3cret"), std::string::npos);
  EXPECT_THAT(b.fix, HasSubstr("user, password and vhost"));
}

TEST_F(DoctorTest, RuntimeIsTheEnginesDefaultWhenUnset) {
  engine_.info.default_runtime = "runc";
  auto checks = Run();
  const DoctorCheck& c = Find(checks, "runtime");
  EXPECT_EQ(c.level, Level::kOk);
  EXPECT_THAT(c.detail, HasSubstr("the engine's default (runc)"));
}

TEST_F(DoctorTest, RuntimeTheEngineHasRunsTheProbe) {
  engine_.info.runtimes = {"runc", "runsc"};
  engine_.info.runtime_details["runsc"] = {"/usr/bin/runsc", {"--network=host"}};
  config_.container_runtime = "runsc";
  std::vector<std::string> ran_under;
  auto doctor = engine_.programs["doctor"];
  engine_.programs["doctor"] = [&](const ContainerSpec& spec, const OutputFn& out,
                                   const std::atomic<bool>& stop) {
    if (spec.entrypoint == std::vector<std::string>{"/sandbox"}) {
      ran_under.push_back(spec.runtime);
      return 0;
    }
    return doctor(spec, out, stop);
  };
  auto checks = Run();
  const DoctorCheck& c = Find(checks, "runtime");
  EXPECT_EQ(c.level, Level::kOk) << FormatCheck(c);
  EXPECT_THAT(c.detail, HasSubstr("runsc (/usr/bin/runsc --network=host)"));
  EXPECT_THAT(ran_under, ::testing::ElementsAre("runsc"));
  EXPECT_EQ(engine_.live_containers(), 0u);
}

TEST_F(DoctorTest, RuntimeTheEngineLacksOrCannotStartFails) {
  engine_.info.runtimes = {"runc"};
  config_.container_runtime = "runsc";
  const DoctorCheck unknown = Find(Run(), "runtime");
  EXPECT_EQ(unknown.level, Level::kFail);
  EXPECT_THAT(unknown.detail, HasSubstr("CONTAINER_RUNTIME is 'runsc'"));
  EXPECT_THAT(unknown.fix, HasSubstr("daemon.json"));

  engine_.info.runtimes = {"runc", "runsc"};
  engine_.programs["doctor"] = [](const ContainerSpec&, const OutputFn& out,
                                  const std::atomic<bool>&) {
    out(StreamKind::kStderr, "gVisor: cannot start\n");
    return 128;
  };
  const DoctorCheck failed = Find(Run(), "runtime");
  EXPECT_EQ(failed.level, Level::kFail);
  EXPECT_THAT(failed.detail, HasSubstr("exit code 128: gVisor: cannot start"));
}

TEST_F(DoctorTest, GpusUnderGvisorWithoutNvproxyFail) {
  engine_.info.runtimes = {"runc", "runsc"};
  engine_.info.runtime_details["runsc"] = {"/usr/bin/runsc", {"--network=host"}};
  config_.container_runtime = "runsc";
  config_.use_gpu = true;
  gpus_ = testing::EightH100();
  const DoctorCheck c = Find(Run(), "runtime");
  EXPECT_EQ(c.level, Level::kFail);
  EXPECT_THAT(c.detail, HasSubstr("--nvproxy"));
}

TEST(FormatCheck, OneLineAndTheFixBelow) {
  DoctorCheck c{"broker", Level::kFail, "refused", "check BROKER_URL"};
  EXPECT_EQ(FormatCheck(c), "FAIL  broker          refused\n"
                            "                      -> check BROKER_URL");
  DoctorCheck ok{"slots", Level::kOk, "2 slots\nslot 0: GPU 0", ""};
  EXPECT_EQ(FormatCheck(ok), "ok    slots           2 slots\n"
                             "                      slot 0: GPU 0");
}

}  // namespace
}  // namespace cw
