// DockerEngine against the real engine. Needs dockerd (scripts/start-docker)
// and the test image (scripts/make-test-images); fails, not skips, without them.
// The same tests run against Podman, rootful and rootless (CONTAINER_SOCKET,
// CW_TEST_RUN_AS; tests/integration/CMakeLists.txt): with
// CW_TEST_ENGINE_OPTIONAL set they skip when that engine is not there.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/abandon.h"
#include "engine/docker_engine.h"
#include "engine/image_budget.h"
#include "config/config.h"
#include "job/container_spec.h"
#include "job/network_holders.h"
#include "run_as_user.h"
#include "sandbox/sandbox_image.h"
#include "worker/slot_environments.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

constexpr char kImage[] = "codabench-worker-test/busybox:latest";
constexpr char kLabel[] = "codabench-worker-test.case";

std::string SocketUrl() {
  const char* env = std::getenv("CONTAINER_SOCKET");
  return env && *env ? env : "unix:///var/run/docker.sock";
}

// Podman's sockets (rootful /run/podman/, rootless /run/user/<uid>/podman/).
bool UnderPodman() { return SocketUrl().find("podman") != std::string::npos; }

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

struct Collected {
  Status status;
  std::string out, err;
  bool started = false;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = std::make_unique<DockerEngine>(SocketUrl());
    if (std::getenv("CW_TEST_ENGINE_OPTIONAL") != nullptr) {
      if (std::string user = RunAsUserMissing(); !user.empty()) {
        GTEST_SKIP() << "no user " << user << " for rootless podman (scripts/start-podman)";
      }
      if (!engine_->Version().ok()) {
        GTEST_SKIP() << "no engine answers at " << SocketUrl() << " (scripts/start-podman)";
      }
    }
    engine_up_ = true;
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    label_ = std::string(info->name()) + "-" + std::to_string(getpid()) + "-" +
             std::to_string(counter++);
    Result<bool> has_image = engine_->ImageExists(kImage);
    ASSERT_TRUE(has_image.ok()) << has_image.status().ToString();
    ASSERT_TRUE(*has_image) << kImage << " is missing: run scripts/make-test-images";
  }

  void TearDown() override {
    if (!engine_up_) return;
    Result<std::vector<std::string>> ids = engine_->ListByLabel(kLabel, label_);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    for (const std::string& id : *ids) {
      EXPECT_TRUE(engine_->Remove(id, /*force=*/true).ok()) << id;
    }
    Result<std::vector<std::string>> left = engine_->ListByLabel(kLabel, label_);
    ASSERT_TRUE(left.ok());
    EXPECT_TRUE(left->empty()) << "containers left behind";
  }

  ContainerSpec Spec(const std::string& shell_command) const {
    ContainerSpec spec;
    spec.image = kImage;
    spec.cmd = {"sh", "-c", shell_command};
    spec.labels = {{kLabel, label_}};
    spec.network_disabled = true;
    return spec;
  }

  std::string MustCreate(const ContainerSpec& spec) {
    Result<std::string> id = engine_->Create(spec);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : std::string("no-such-container");
  }

  Collected StartAndCollect(const std::string& id) {
    Collected run;
    std::mutex mu;
    run.status = engine_->StartAndStream(
        id,
        [&](StreamKind kind, std::string_view data) {
          std::lock_guard lock(mu);
          EXPECT_TRUE(run.started) << "output before on_started";
          (kind == StreamKind::kStdout ? run.out : run.err).append(data);
        },
        [&] {
          std::lock_guard lock(mu);
          run.started = true;
        });
    return run;
  }

  std::unique_ptr<DockerEngine> engine_;
  bool engine_up_ = false;  // SetUp found the engine (else it skipped)
  std::string label_;
};

TEST_F(EngineTest, Version) {
  Result<std::string> v = engine_->Version();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->rfind("Docker ", 0), 0u) << *v;
  EXPECT_NE(v->find("(API "), std::string::npos) << *v;
}

TEST_F(EngineTest, StdoutAndStderrKeptApartAndExitCode) {
  std::string id = MustCreate(Spec("echo out; echo err 1>&2; exit 3"));
  Collected run = StartAndCollect(id);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_TRUE(run.started);
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.err, "err\n");
  Result<int> code = engine_->Wait(id, seconds(30));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 3);
}

// Job containers take the Python worker's names, which repeat: the engine's
// refusal must be AlreadyExists for the job to retry under another name.
TEST_F(EngineTest, ANameInUseIsAlreadyExists) {
  ContainerSpec spec = Spec("true");
  spec.name = "scoring_uPK-1_sID-" + label_;
  std::string first = MustCreate(spec);
  Result<std::string> again = engine_->Create(spec);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists) << again.status().ToString();
  EXPECT_NE(again.status().message().find(spec.name), std::string::npos) << again.status().ToString();
  spec.name += "_a1b2c3";
  MustCreate(spec);
  // Once the first is gone, its name is free again.
  ASSERT_TRUE(engine_->Remove(first, /*force=*/true).ok());
  spec.name = "scoring_uPK-1_sID-" + label_;
  MustCreate(spec);
}

TEST_F(EngineTest, NameEnvAndWorkingDir) {
  ContainerSpec spec = Spec("echo \"$GREETING\"; pwd");
  spec.name = "cw-engine-test-" + label_;
  spec.env = {"GREETING=hello there"};
  spec.working_dir = "/tmp";
  std::string id = MustCreate(spec);
  Collected run = StartAndCollect(id);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_EQ(run.out, "hello there\n/tmp\n");
  EXPECT_EQ(run.err, "");
}

TEST_F(EngineTest, LargeOutputStreamsInFullWithoutBuffering) {
  const long long total = 50'000'000;
  std::string id = MustCreate(Spec("yes 0123456789 | head -c " + std::to_string(total)));
  long long bytes = 0, err_bytes = 0, next_sample = 0;
  long rss_before = RssKb(), rss_peak = rss_before;
  bool pattern_ok = true;
  Status s = engine_->StartAndStream(
      id,
      [&](StreamKind kind, std::string_view data) {
        if (kind == StreamKind::kStderr) {
          err_bytes += data.size();
          return;
        }
        for (size_t i = 0; i < data.size() && pattern_ok; i += 4099) {
          // "0123456789\n" repeats every 11 bytes from the stream's start.
          pattern_ok = data[i] == "0123456789\n"[(bytes + i) % 11];
        }
        bytes += data.size();
        if (bytes >= next_sample) {
          rss_peak = std::max(rss_peak, RssKb());
          next_sample = bytes + (1 << 20);
        }
      },
      nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(bytes, total);
  EXPECT_EQ(err_bytes, 0);
  EXPECT_TRUE(pattern_ok);
  EXPECT_LT(rss_peak - rss_before, 30 * 1024)
      << "RSS grew from " << rss_before << " kB to " << rss_peak << " kB";
  Result<int> code = engine_->Wait(id, seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST_F(EngineTest, LabelsFindTheContainerAndRemoveLeavesNothing) {
  std::string id = MustCreate(Spec("true"));
  Result<std::vector<std::string>> ids = engine_->ListByLabel(kLabel, label_);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, std::vector<std::string>{id});
  Result<std::vector<std::string>> other = engine_->ListByLabel(kLabel, label_ + "-other");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());

  EXPECT_TRUE(engine_->Remove(id, /*force=*/false).ok());
  ids = engine_->ListByLabel(kLabel, label_);
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(ids->empty());
  // Gone already: not an error, and neither is killing it.
  EXPECT_TRUE(engine_->Remove(id, true).ok());
  EXPECT_TRUE(engine_->Kill(id).ok());
}

TEST_F(EngineTest, KillEndsTheStreamAndWaitTimesOutBefore) {
  std::string id = MustCreate(Spec("echo ready; sleep 100"));
  std::promise<void> started;
  auto streaming = std::async(std::launch::async, [&] {
    return engine_->StartAndStream(
        id, [](StreamKind, std::string_view) {}, [&] { started.set_value(); });
  });
  ASSERT_EQ(started.get_future().wait_for(seconds(30)), std::future_status::ready);

  Result<int> early = engine_->Wait(id, seconds(1));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code(), Code::kTimeout) << early.status().ToString();

  auto t0 = Clock::now();
  ASSERT_TRUE(engine_->Kill(id).ok());
  ASSERT_EQ(streaming.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, seconds(5));
  Status s = streaming.get();
  EXPECT_TRUE(s.ok()) << s.ToString();
  Result<int> code = engine_->Wait(id, seconds(30));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 137);  // SIGKILL
  EXPECT_TRUE(engine_->Kill(id).ok()) << "killing a stopped container is fine";
}

TEST_F(EngineTest, ConcurrentStreamsStayApart) {
  constexpr int kJobs = 4;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    ids.push_back(MustCreate(Spec("for n in $(seq 2000); do echo job" + std::to_string(i) +
                                  "; done; echo e" + std::to_string(i) + " >&2")));
  }
  std::vector<std::future<Collected>> runs;
  for (int i = 0; i < kJobs; ++i) {
    runs.push_back(std::async(std::launch::async, [&, i] { return StartAndCollect(ids[i]); }));
  }
  for (int i = 0; i < kJobs; ++i) {
    Collected run = runs[i].get();
    ASSERT_TRUE(run.status.ok()) << run.status.ToString();
    std::string line = "job" + std::to_string(i) + "\n";
    std::string expected;
    for (int n = 0; n < 2000; ++n) expected += line;
    EXPECT_EQ(run.out, expected) << i;
    EXPECT_EQ(run.err, "e" + std::to_string(i) + "\n");
  }
}

TEST_F(EngineTest, ReadOnlyBindMount) {
  fs::path dir = fs::temp_directory_path() / ("cw-engine-test-" + label_);
  fs::create_directories(dir);
  std::ofstream(dir / "hello.txt") << "hello from the host\n";
  ContainerSpec spec = Spec(
      "cat /data/hello.txt; if echo x > /data/new 2>/dev/null; then echo WROTE; "
      "else echo DENIED; fi");
  spec.mounts = {{dir.string(), "/data", /*read_only=*/true}};
  std::string id = MustCreate(spec);
  Collected run = StartAndCollect(id);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_EQ(run.out, "hello from the host\nDENIED\n");
  EXPECT_FALSE(fs::exists(dir / "new"));
  fs::remove_all(dir);
}

TEST_F(EngineTest, CommandNotInImageIsInvalidInput) {
  ContainerSpec spec = Spec("");
  spec.cmd = {"no-such-command"};
  std::string id = MustCreate(spec);
  auto t0 = Clock::now();
  Collected run = StartAndCollect(id);
  EXPECT_EQ(run.status.code(), Code::kInvalidInput) << run.status.ToString();
  EXPECT_NE(run.status.message().find("executable file not found"), std::string::npos)
      << run.status.message();
  EXPECT_FALSE(run.started);
  EXPECT_LT(Clock::now() - t0, seconds(10));
}

TEST_F(EngineTest, MissingContainerIsNotFound) {
  Collected run = StartAndCollect("cw-engine-test-no-such-container");
  EXPECT_EQ(run.status.code(), Code::kNotFound) << run.status.ToString();
  Result<int> code = engine_->Wait("cw-engine-test-no-such-container", seconds(5));
  EXPECT_EQ(code.status().code(), Code::kNotFound) << code.status().ToString();
}

TEST_F(EngineTest, MissingImageIsNotFound) {
  ContainerSpec spec = Spec("true");
  spec.image = "codabench-worker-test/no-such-image:1";
  Result<std::string> id = engine_->Create(spec);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Code::kNotFound) << id.status().ToString();
  EXPECT_NE(id.status().message().find("no-such-image"), std::string::npos);

  Result<bool> exists = engine_->ImageExists(spec.image);
  ASSERT_TRUE(exists.ok()) << exists.status().ToString();
  EXPECT_FALSE(*exists);
}

TEST_F(EngineTest, PullFromUnreachableRegistryFailsQuickly) {
  auto t0 = Clock::now();
  int progress_calls = 0;
  Status s =
      engine_->PullImage("localhost:1/nope:1", [&](const PullProgress&) { ++progress_calls; });
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("localhost:1/nope:1"), std::string::npos) << s.ToString();
  EXPECT_LT(Clock::now() - t0, seconds(60));

  Status bad = engine_->PullImage("not a reference", nullptr);
  EXPECT_EQ(bad.code(), Code::kInvalidInput) << bad.ToString();
}

TEST_F(EngineTest, APullForAJobThatGaveUpEndsWithinSeconds) {
  // A registry that takes the connection and never answers: the engine
  // waits on it for about 25 s.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string image = "localhost:" + std::to_string(ntohs(addr.sin_port)) + "/silent:1";

  auto t0 = Clock::now();
  AbandonScope abandon([&] { return Clock::now() - t0 > seconds(1); });
  Status s = engine_->PullImage(image, nullptr);
  auto took = Clock::now() - t0;
  ::close(fd);
  EXPECT_EQ(s.code(), Code::kCancelled) << s.ToString();
  EXPECT_LT(took, seconds(5));
}

TEST_F(EngineTest, NoEngineAtTheSocketIsUnavailableWithAHint) {
  DockerEngine nowhere("unix:///nonexistent/docker.sock");
  auto t0 = Clock::now();
  Result<std::string> v = nowhere.Version();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kUnavailable);
  const std::string& m = v.status().message();
  EXPECT_NE(m.find("unix:///nonexistent/docker.sock"), std::string::npos) << m;
  EXPECT_NE(m.find("is dockerd running?"), std::string::npos) << m;
  EXPECT_NE(m.find("CONTAINER_SOCKET"), std::string::npos) << m;
  EXPECT_LT(Clock::now() - t0, seconds(6));
  EXPECT_EQ(nowhere.Create(Spec("true")).status().code(), Code::kUnavailable);
  EXPECT_EQ(nowhere.StartAndStream("x", nullptr, nullptr).code(), Code::kUnavailable);
}

// The network namespace a container's process is in, as `net:[inode]`.
TEST_F(EngineTest, EachProgramJoinsAFreshNamespaceMadeAheadOnTheWorkersNetwork) {
  Result<std::string> image = EnsureSandboxImage(*engine_);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(*image, SandboxImageReference());
  ASSERT_TRUE(engine_->EnsureNetwork("codabench-worker-test-jobs", {{kLabel, label_}}).ok());
  ASSERT_TRUE(engine_->EnsureNetwork("codabench-worker-test-jobs", {}).ok()) << "made once";

  // What a program sees of its namespace: its number, hostname and hosts file.
  auto run_in = [&](const std::string& holder, const std::string& script) {
    ContainerSpec spec = Spec(script);
    spec.network_disabled = false;
    spec.network_mode = "container:" + holder;
    std::string id = MustCreate(spec);
    Collected run = StartAndCollect(id);
    EXPECT_TRUE(run.status.ok()) << run.status.ToString();
    Result<int> code = engine_->Wait(id, seconds(30));
    EXPECT_TRUE(code.ok() && *code == 0) << run.err;
    // Gone before its holder, as a job removes them (podman refuses to
    // remove a holder while a container that joined it is there).
    EXPECT_TRUE(engine_->Remove(id, true).ok());
    return run.out;
  };
  NetworkHolderOptions options;
  options.image = *image;
  options.network = "codabench-worker-test-jobs";
  options.labels = {{kLabel, label_}};
  options.security_opt = {"no-new-privileges"};
  std::vector<std::string> taken;
  {
    NetworkHolders holders(*engine_, options);
    holders.Prepare();
    Result<std::string> taken_first = holders.Take("program");
    ASSERT_TRUE(taken_first.ok()) << taken_first.status().ToString();
    std::string first = *taken_first;
    ASSERT_FALSE(first.empty());
    taken.push_back(first);
    const std::string script = "readlink /proc/self/ns/net; hostname; grep -c marker /etc/hosts; true";
    // A program that writes into its namespace's files...
    std::string seen = run_in(first, "echo '6.6.6.6 marker' >> /etc/hosts; " + script);
    EXPECT_NE(seen.find("net:["), std::string::npos) << seen;
    EXPECT_NE(seen.find("\n1\n"), std::string::npos) << "its own write: " << seen;
    // ...and the next program, in a namespace of its own, sees none of it.
    Result<std::string> taken_second = holders.Take("program");
    ASSERT_TRUE(taken_second.ok()) << taken_second.status().ToString();
    std::string second = *taken_second;
    ASSERT_FALSE(second.empty());
    taken.push_back(second);
    EXPECT_NE(second, first);
    std::string next = run_in(second, script);
    EXPECT_NE(next.find("\n0\n"), std::string::npos) << "another's hosts file: " << next;
    std::string first_host = seen.substr(seen.find('\n') + 1);
    std::string next_host = next.substr(next.find('\n') + 1);
    EXPECT_NE(first_host.substr(0, first_host.find('\n')),
              next_host.substr(0, next_host.find('\n')))
        << "the same hostname";
    // The holder runs the worker's own program on the worker's network.
    Result<ContainerState> state = engine_->Inspect(first, false);
    ASSERT_TRUE(state.ok());
    EXPECT_TRUE(state->running);
    for (const std::string& id : taken) EXPECT_TRUE(engine_->Remove(id, true).ok());
  }
  // The spares no program took went with the slot.
  Result<std::vector<std::string>> left = engine_->ListByLabel(kLabelNetworkHolder, "true");
  ASSERT_TRUE(left.ok());
  for (const std::string& id : *left) {
    Result<std::vector<std::string>> mine = engine_->ListByLabel(kLabel, label_);
    ASSERT_TRUE(mine.ok());
    EXPECT_EQ(std::find(mine->begin(), mine->end(), id), mine->end()) << id << " left behind";
  }
}

TEST_F(EngineTest, ProgramsOfTwoSlotsCannotReachEachOther) {
  // Each slot's network as the worker makes it: one for all under Docker,
  // one per slot under podman, and the holders the programs join, as
  // SlotEnvironments makes them (under podman refusing the routes to the
  // other slots' subnets).
  Result<std::string> image = EnsureSandboxImage(*engine_);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  ContainerOptions c;
  c.network = kDefaultContainerNetwork;
  c.podman = UnderPodman();
  const std::vector<std::string> networks = {EnsureProgramNetwork(c, "engine-test", 0, *engine_),
                                             EnsureProgramNetwork(c, "engine-test", 1, *engine_)};
  ASSERT_FALSE(networks[0].empty());
  ASSERT_FALSE(networks[1].empty());
  std::vector<std::vector<std::string>> prohibit(2);
  if (c.podman) {
    prohibit = OtherSlotsSubnets(networks, *engine_);
    ASSERT_FALSE(prohibit[1].empty()) << "podman gave slot 0's network no subnet";
  }
  std::vector<std::string> joined;  // removed before their holders, as a job does
  std::vector<std::unique_ptr<NetworkHolders>> slots;
  for (int i = 0; i < 2; ++i) {
    NetworkHolderOptions options;
    options.image = *image;
    options.network = networks[i];
    options.labels = {{kLabel, label_}};
    options.security_opt = ContainerSecurityOptions(c);
    options.prohibit = prohibit[i];
    options.spares = 0;
    slots.push_back(std::make_unique<NetworkHolders>(*engine_, options));
  }
  // A holder of the slot's own for each program (removed by the fixture,
  // after the programs: every container carries its label).
  auto holder_of = [&](int slot) {
    Result<std::string> taken = slots[slot]->Take("program");
    EXPECT_TRUE(taken.ok()) << taken.status().ToString();
    std::string id = taken.value_or("");
    EXPECT_FALSE(id.empty());
    return id.empty() ? std::string() : "container:" + id;
  };
  // A server that says where it listens, and a probe that knocks there and
  // on the addresses beside it.
  fs::path out = fs::temp_directory_path() / ("cw-probe-" + label_);
  fs::create_directories(out);
  auto serve_on = [&](const std::string& network) {
    ContainerSpec server = Spec(
        "ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\).*/\\1/p' > /out/ip.tmp; "
        "mv /out/ip.tmp /out/ip; while true; do echo hello | nc -l -p 8080; done");
    server.network_disabled = false;
    server.network_mode = network;
    server.mounts = {{out.string(), "/out", false}};
    fs::remove(out / "ip");
    std::string id = MustCreate(server);
    joined.push_back(id);
    EXPECT_TRUE(engine_->Start(id).ok());
    std::string ip;
    for (int i = 0; i < 100 && ip.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream in(out / "ip");
      std::getline(in, ip);
    }
    return ip;
  };
  auto probe_from = [&](const std::string& network, const std::string& target) {
    std::string base = target.substr(0, target.rfind('.') + 1);
    int last = std::atoi(target.c_str() + target.rfind('.') + 1);
    std::string targets;
    for (int n = std::max(2, last - 2); n <= last + 2; ++n) targets += base + std::to_string(n) + " ";
    ContainerSpec probe = Spec("for a in " + targets +
                               "; do if echo | nc -w 1 $a 8080 | grep -q hello; then "
                               "echo reached $a; fi; done; ip route del " + target +
                               " 2>/dev/null && echo route removed; echo done");
    probe.network_disabled = false;
    probe.network_mode = network;
    std::string id = MustCreate(probe);
    joined.push_back(id);
    Collected run = StartAndCollect(id);
    EXPECT_TRUE(run.status.ok()) << run.status.ToString();
    EXPECT_NE(run.out.find("done"), std::string::npos) << run.out << run.err;
    return run.out;
  };
  std::string server_ip = serve_on(holder_of(0));
  ASSERT_FALSE(server_ip.empty()) << "the server never said where it listens";
  std::string seen = probe_from(holder_of(1), server_ip);
  EXPECT_EQ(seen.find("reached"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("route removed"), std::string::npos) << seen;
  // Nor from a program beside it on its own slot's network (under Docker,
  // the same network; under podman, its slot's, where only the job's own
  // programs ever run side by side).
  seen = probe_from(holder_of(0), server_ip);
  if (!c.podman) {
    EXPECT_EQ(seen.find("reached"), std::string::npos) << seen;
  }
  // On the engine's default network, where nothing stops it, the same
  // probe does reach a server: it can tell.
  std::string open_ip = serve_on("");
  ASSERT_FALSE(open_ip.empty());
  seen = probe_from("", open_ip);
  EXPECT_NE(seen.find("reached " + open_ip), std::string::npos)
      << "the probe reaches nothing even where it could: " << seen;
  for (auto it = joined.rbegin(); it != joined.rend(); ++it) {
    EXPECT_TRUE(engine_->Remove(*it, true).ok()) << *it;
  }
  std::error_code ec;
  fs::remove_all(out, ec);
}

// Makes a small image of its own content (so it has its own layer) with the
// docker CLI, as an admin's store would hold competition images: through the
// engine under test (DOCKER_HOST from CONTAINER_SOCKET; podman serves the
// same import).
std::string MakeImage(const std::string& tag, const fs::path& dir) {
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "payload");
    std::string chunk(1 << 20, static_cast<char>('a' + tag.size() % 26));
    for (int i = 0; i < 2; ++i) f << chunk << tag << i;
  }
  std::string cmd = "tar -C " + dir.string() + " -cf - payload | DOCKER_HOST=" + SocketUrl() +
                    " docker import - " + tag + " >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return tag;
}

// GPU requests are checked at start against what the engine keeps of them
// (no GPU needed: the container is made, never started). Docker keeps them;
// Podman 4 drops them through its Docker API, so a worker on it refuses to
// start instead of running every program without its GPUs.
TEST_F(EngineTest, AnEngineThatDropsGpuRequestsIsToldAtStart) {
  Result<std::string> image = EnsureSandboxImage(*engine_);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  Result<EngineInfo> info = engine_->Info();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  for (const char* driver : {"cdi", "nvidia"}) {
    std::vector<DeviceRequest> gpus(1);
    gpus[0].driver = driver;
    if (gpus[0].driver == "cdi") {
      gpus[0].device_ids = {"nvidia.com/gpu=all"};
    } else {
      gpus[0].count = -1;
      gpus[0].capabilities = {{"gpu"}};
    }
    Status kept = CheckGpuRequestsKept(*image, gpus, {{kLabel, label_}}, *engine_);
    const bool podman4 = UnderPodman() && info->server_version.rfind("4.", 0) == 0;
    if (podman4) {
      EXPECT_EQ(kept.code(), Code::kInvalidInput) << driver << ": " << kept.ToString();
      EXPECT_NE(kept.message().find("drops GPU requests"), std::string::npos) << kept.message();
    } else {
      EXPECT_TRUE(kept.ok()) << driver << " under " << info->server_version << ": "
                             << kept.ToString();
    }
  }
  auto left = engine_->ListByLabel(kLabel, label_);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "the check's container was removed";
}

TEST_F(EngineTest, ImageBudgetRemovesTheLeastRecentlyUsedOfItsOwnImagesOnly) {
  // Podman 4.3 says LayersSize 0 (the images' sizes are counted instead)
  // and lists these images as localhost/cw-budget-test/...
  const bool podman = UnderPodman();
  fs::path tmp = fs::temp_directory_path() / ("cw-images-" + label_);
  const std::string old_image = MakeImage("cw-budget-test/old:" + std::to_string(getpid()), tmp / "a");
  const std::string new_image = MakeImage("cw-budget-test/new:" + std::to_string(getpid()), tmp / "b");
  auto before = engine_->ImageStoreBytes();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  auto images = engine_->ListImages();
  ASSERT_TRUE(images.ok()) << images.status().ToString();

  long long clock = 1000;
  // Over budget by about half of one test image: one removal is enough.
  ImageBudget budget(*engine_, static_cast<std::uint64_t>(*before - (1 << 20)), tmp / "use.json",
                     [&clock] { return clock; }, podman);
  budget.Acquire(old_image);
  budget.Release(old_image);
  clock = 2000;
  budget.Acquire(new_image);
  budget.Release(new_image);
  auto swept = budget.Enforce();
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->removed, std::vector<std::string>{old_image});
  EXPECT_LT(swept->after_bytes, swept->before_bytes);
  EXPECT_FALSE(*engine_->ImageExists(old_image));
  EXPECT_TRUE(*engine_->ImageExists(new_image));
  EXPECT_TRUE(*engine_->ImageExists(kImage));  // never recorded: never touched

  // An image a job holds stays, whatever the budget.
  ImageBudget tight(*engine_, 1, tmp / "use2.json", [&clock] { return clock; }, podman);
  tight.Acquire(new_image);
  auto held = tight.Enforce();
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_TRUE(held->removed.empty());
  EXPECT_TRUE(*engine_->ImageExists(new_image));
  tight.Release(new_image);
  // The record outlives the process: a new budget reads it and may remove.
  ImageBudget reloaded(*engine_, 1, tmp / "use2.json", [&clock] { return clock; }, podman);
  long long measured = -1;  // what the metrics' image_store_bytes is told
  reloaded.set_on_measured([&measured](long long bytes) { measured = bytes; });
  auto freed = reloaded.Enforce();
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_EQ(freed->removed, std::vector<std::string>{new_image});
  EXPECT_EQ(measured, freed->after_bytes);
  EXPECT_GT(measured, 0);
  EXPECT_TRUE(*engine_->ImageExists(kImage));
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace cw
