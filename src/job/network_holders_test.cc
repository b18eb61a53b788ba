#include "job/network_holders.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "config/config.h"
#include "job/test_fakes.h"

namespace cw {
namespace {

// Just what NetworkHolders asks of an engine, with switches for its failures.
// Spares are made on the holders' own thread: every call takes mu.
class HolderEngine : public ContainerEngine {
 public:
  std::recursive_mutex mu;
  std::map<std::string, ContainerSpec> created;  // by id
  std::set<std::string> running;
  std::vector<std::string> removed;
  bool fail_create = false;
  bool exits_at_once = false;
  bool refuse_remove = false;  // podman, while a container that joined it is there
  int made = 0;

  Result<std::string> Version() override { return std::string("fake"); }
  Result<bool> ImageExists(const std::string&) override { return true; }
  Status PullImage(const std::string&, const PullProgressFn&) override { return Status::Ok(); }
  Result<std::string> Create(const ContainerSpec& spec) override {
    std::lock_guard<std::recursive_mutex> lock(mu);
    if (fail_create) return NotFound("no such image: " + spec.image);
    std::string id = "holder" + std::to_string(made++);
    created[id] = spec;
    return id;
  }
  Status Start(const std::string& id) override {
    std::lock_guard<std::recursive_mutex> lock(mu);
    if (!exits_at_once) running.insert(id);
    return Status::Ok();
  }
  Status StartAndStream(const std::string&, const OutputFn&, const std::function<void()>&) override {
    return Status::Ok();
  }
  Result<int> Wait(const std::string&, std::chrono::seconds) override { return 0; }
  Result<ContainerState> Inspect(const std::string& id, bool) override {
    std::lock_guard<std::recursive_mutex> lock(mu);
    if (!created.count(id)) return NotFound("no container " + id);
    ContainerState st;
    st.running = running.count(id) > 0;
    st.exit_code = st.running ? 0 : 2;
    return st;
  }
  Status Kill(const std::string& id) override {
    std::lock_guard<std::recursive_mutex> lock(mu);
    running.erase(id);
    return Status::Ok();
  }
  Status Remove(const std::string& id, bool) override {
    std::lock_guard<std::recursive_mutex> lock(mu);
    if (refuse_remove) return Internal("container " + id + " has dependent containers");
    running.erase(id);
    created.erase(id);
    removed.push_back(id);
    return Status::Ok();
  }
  Result<std::vector<std::string>> ListByLabel(const std::string&, const std::string&) override {
    return std::vector<std::string>();
  }
};

NetworkHolderOptions Options(int spares = 2) {
  NetworkHolderOptions o;
  o.image = "localhost/codabench-worker/sandbox:0123456789ab";
  o.network = "codabench-jobs";
  o.labels = {{kLabelHolderNode, "n1"}};
  o.security_opt = {"no-new-privileges"};
  o.spares = spares;
  return o;
}

// Waits (a few seconds at most) until `count` spares are ready.
bool AwaitReady(const NetworkHolders& holders, std::size_t count) {
  for (int i = 0; i < 500 && holders.ready() < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return holders.ready() == count;
}

TEST(NetworkHoldersTest, AHolderRunsTheWorkersOwnProgramOnTheWorkersNetwork) {
  ContainerSpec spec = NetworkHolders::HolderSpec(Options());
  EXPECT_EQ(spec.image, "localhost/codabench-worker/sandbox:0123456789ab");
  EXPECT_EQ(spec.entrypoint, std::vector<std::string>{"/sandbox"});
  EXPECT_TRUE(spec.cmd.empty());
  EXPECT_FALSE(spec.network_disabled);
  EXPECT_EQ(spec.network_mode, "codabench-jobs");
  EXPECT_EQ(spec.hostname.size(), 12u);
  EXPECT_NE(NetworkHolders::HolderSpec(Options()).hostname, spec.hostname) << "one per holder";
  EXPECT_EQ(spec.cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(spec.security_opt, std::vector<std::string>{"no-new-privileges"});
  EXPECT_EQ(spec.labels.at(kLabelHolderNode), "n1");  // swept with the node's
  EXPECT_FALSE(spec.labels.count("org.codabench.node")) << "the node's job containers only";
  EXPECT_EQ(spec.labels.at(kLabelNetworkHolder), "true");
  EXPECT_GT(spec.pids_limit, 0);
  EXPECT_GT(spec.memory_bytes, 0);
}

TEST(NetworkHoldersTest, AHolderProhibitsTheNetworksItIsGivenWithNetAdminInItsNamespaceOnly) {
  EXPECT_TRUE(NetworkHolders::HolderSpec(Options()).cap_add.empty()) << "nothing to prohibit";
  NetworkHolderOptions o = Options();
  o.prohibit = {"10.89.1.0/24", "fd00:1::/64"};
  ContainerSpec spec = NetworkHolders::HolderSpec(o);
  EXPECT_EQ(spec.entrypoint, std::vector<std::string>{"/sandbox"});
  EXPECT_EQ(spec.cmd, (std::vector<std::string>{"hold", "10.89.1.0/24", "fd00:1::/64"}));
  EXPECT_EQ(spec.cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(spec.cap_add, std::vector<std::string>{"NET_ADMIN"});
}

TEST(NetworkHoldersTest, AHolderThatExitedIsNeverJoined) {
  // As /sandbox does when it cannot add its routes: the spare is gone by
  // the time a program wants it, and the program gets one made now.
  HolderEngine engine;
  engine.exits_at_once = true;
  NetworkHolders holders(engine, Options(1));
  holders.Prepare();
  ASSERT_TRUE(AwaitReady(holders, 1));
  engine.exits_at_once = false;
  std::string id = holders.Take("program").value_or("");
  EXPECT_EQ(id, "holder1");
  std::lock_guard<std::recursive_mutex> lock(engine.mu);
  EXPECT_EQ(engine.removed, std::vector<std::string>{"holder0"});
}

TEST(ProgramNetwork, EachSlotProhibitsTheOtherSlotsSubnets) {
  testing::FakeEngine engine;
  engine.subnets = {{"jobs-0", {"10.89.1.0/24"}}, {"jobs-1", {"10.89.2.0/24", "fd00:2::/64"}},
                    {"shared", {"10.89.9.0/24"}}};
  auto out = OtherSlotsSubnets({"jobs-0", "jobs-1", "", "missing"}, engine);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], (std::vector<std::string>{"10.89.2.0/24", "fd00:2::/64"}));
  EXPECT_EQ(out[1], std::vector<std::string>{"10.89.1.0/24"});
  EXPECT_TRUE(out[2].empty()) << "the engine's default network: no holders of ours to add routes";
  // One the engine cannot describe (logged) still keeps away from the others.
  EXPECT_EQ(out[3], (std::vector<std::string>{"10.89.1.0/24", "10.89.2.0/24", "fd00:2::/64"}));
  // Slots on one network (Docker's, traffic between its containers off)
  // prohibit nothing of each other.
  out = OtherSlotsSubnets({"shared", "shared"}, engine);
  EXPECT_TRUE(out[0].empty());
  EXPECT_TRUE(out[1].empty());
}

TEST(NetworkHoldersTest, SparesAreMadeAheadAndNoneIsEverGivenTwice) {
  HolderEngine engine;
  NetworkHolders holders(engine, Options(2));
  holders.Prepare();
  ASSERT_TRUE(AwaitReady(holders, 2));
  std::set<std::string> given;
  for (int job = 0; job < 5; ++job) {
    std::string ingestion = holders.Take("ingestion").value_or("");
    std::string program = holders.Take("program").value_or("");
    ASSERT_FALSE(ingestion.empty());
    ASSERT_FALSE(program.empty());
    EXPECT_TRUE(given.insert(ingestion).second) << ingestion << " given twice";
    EXPECT_TRUE(given.insert(program).second) << program << " given twice";
    ASSERT_TRUE(AwaitReady(holders, 2)) << "the next job's spares";
  }
  // The taken ones are their jobs' to remove; the slot made two more.
  EXPECT_TRUE(engine.removed.empty());
  std::lock_guard<std::recursive_mutex> lock(engine.mu);
  EXPECT_EQ(engine.made, 12);
}

TEST(NetworkHoldersTest, WithNoSpareReadyOneIsMadeNow) {
  HolderEngine engine;
  NetworkHolders holders(engine, Options(1));
  std::string id = holders.Take("program").value_or("");  // no Prepare: nothing ready
  EXPECT_FALSE(id.empty());
  std::lock_guard<std::recursive_mutex> lock(engine.mu);
  EXPECT_TRUE(engine.running.count(id));
}

TEST(NetworkHoldersTest, ASpareTheEngineStoppedIsReplaced) {
  HolderEngine engine;
  NetworkHolders holders(engine, Options(1));
  holders.Prepare();
  ASSERT_TRUE(AwaitReady(holders, 1));
  {
    std::lock_guard<std::recursive_mutex> lock(engine.mu);
    engine.running.clear();  // an engine restart
  }
  std::string id = holders.Take("program").value_or("");
  EXPECT_EQ(id, "holder1");
  std::lock_guard<std::recursive_mutex> lock(engine.mu);
  EXPECT_EQ(engine.removed, std::vector<std::string>{"holder0"});
}

TEST(NetworkHoldersTest, NoHolderMeansANetworkOfItsOwn) {
  HolderEngine engine;
  NetworkHolders holders(engine, Options(1));
  {
    std::lock_guard<std::recursive_mutex> lock(engine.mu);
    engine.fail_create = true;
  }
  Result<std::string> taken = holders.Take("program");
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(*taken, "");
  {
    std::lock_guard<std::recursive_mutex> lock(engine.mu);
    engine.fail_create = false;
  }
  EXPECT_FALSE(holders.Take("program").value_or("").empty()) << "tried again at the next program";
}

TEST(NetworkHoldersTest, WhereOnlyTheRoutesKeepSlotsApartNoHolderMeansTheProgramDoesNotRun) {
  // Under Podman the holders' routes are what keeps the other slots away: a
  // network of its own would be on the slot's network without them.
  HolderEngine engine;
  NetworkHolderOptions options = Options(1);
  options.prohibit = {"10.89.2.0/24"};
  NetworkHolders holders(engine, options);
  {
    std::lock_guard<std::recursive_mutex> lock(engine.mu);
    engine.fail_create = true;
  }
  Result<std::string> taken = holders.Take("scoring program");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), Code::kUnavailable);
  EXPECT_NE(taken.status().message().find("the scoring program's network"), std::string::npos)
      << taken.status().message();
  {
    std::lock_guard<std::recursive_mutex> lock(engine.mu);
    engine.fail_create = false;
  }
  EXPECT_FALSE(holders.Take("scoring program").value_or("").empty()) << "tried again at the next program";
}

TEST(NetworkHoldersTest, AHolderMadeOnDemandThatCouldNotAddItsRoutesIsNeverJoined) {
  HolderEngine engine;
  engine.exits_at_once = true;  // as /sandbox does when a route is refused
  NetworkHolderOptions options = Options(1);
  options.prohibit = {"10.89.2.0/24"};
  NetworkHolders holders(engine, options);
  Result<std::string> taken = holders.Take("submission");  // no spare: made now
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("network holder exited with code"), std::string::npos)
      << taken.status().message();
  std::lock_guard<std::recursive_mutex> lock(engine.mu);
  EXPECT_EQ(engine.removed, std::vector<std::string>{"holder0"});
}

TEST(NetworkHoldersTest, SparesNoProgramTookGoWithTheSlot) {
  HolderEngine engine;
  std::string taken;
  {
    NetworkHolders holders(engine, Options(2));
    holders.Prepare();
    ASSERT_TRUE(AwaitReady(holders, 2));
    taken = holders.Take("program").value_or("");
    ASSERT_TRUE(AwaitReady(holders, 2));
  }
  std::lock_guard<std::recursive_mutex> lock(engine.mu);
  EXPECT_EQ(engine.created.size(), 1u) << "only the taken one, which its job removes";
  EXPECT_TRUE(engine.created.count(taken));
}

TEST(ProgramNetwork, EachSlotsIsMadeWhenMissing) {
  testing::FakeEngine engine;
  ContainerOptions c;
  c.network = WorkerConfig().container_network;
  EXPECT_EQ(c.network, "codabench-jobs");  // the default
  // Docker: one network for every slot, with traffic between containers off.
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 0, engine), "codabench-jobs");
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 1, engine), "codabench-jobs");
  // Podman has no such switch: a network per slot and node, isolated.
  c.podman = true;
  std::string p0 = EnsureProgramNetwork(c, "w@a", 0, engine);
  std::string p1 = EnsureProgramNetwork(c, "w@a", 1, engine);
  std::string other_node = EnsureProgramNetwork(c, "w@b", 0, engine);
  EXPECT_EQ(p0.rfind("codabench-jobs-", 0), 0u) << p0;
  EXPECT_NE(p0, p1);
  EXPECT_NE(p0, other_node);
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 0, engine), p0) << "the same after a restart";
  // An admin's own network is theirs, as it is.
  c.network = "lab-net";
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 1, engine), "lab-net");
  EXPECT_EQ(engine.networks.back(), "lab-net");

  // A network the engine will not make: its default network, not a job
  // that cannot start.
  engine.network_status = Unavailable("no bridge driver");
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 0, engine), "");
  // Docker's default network, or none at all: nothing to make.
  testing::FakeEngine other;
  c.network = "bridge";
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 0, other), "");
  c.network = "codabench-jobs";
  c.network_disabled = true;
  EXPECT_EQ(EnsureProgramNetwork(c, "w@a", 0, other), "");
  EXPECT_TRUE(other.networks.empty());
}

}  // namespace
}  // namespace cw
