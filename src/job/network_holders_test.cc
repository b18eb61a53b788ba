#include "job/network_holders.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace cw {
namespace {

// Just what NetworkHolders asks of an engine, with switches for its failures.
class HolderEngine : public ContainerEngine {
 public:
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
    if (fail_create) return NotFound("no such image: " + spec.image);
    std::string id = "holder" + std::to_string(made++);
    created[id] = spec;
    return id;
  }
  Status Start(const std::string& id) override {
    if (!exits_at_once) running.insert(id);
    return Status::Ok();
  }
  Status StartAndStream(const std::string&, const OutputFn&, const std::function<void()>&) override {
    return Status::Ok();
  }
  Result<int> Wait(const std::string&, std::chrono::seconds) override { return 0; }
  Result<ContainerState> Inspect(const std::string& id, bool) override {
    if (!created.count(id)) return NotFound("no container " + id);
    ContainerState st;
    st.running = running.count(id) > 0;
    st.exit_code = st.running ? 0 : 2;
    return st;
  }
  Status Kill(const std::string& id) override {
    running.erase(id);
    return Status::Ok();
  }
  Status Remove(const std::string& id, bool) override {
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

TEST(NetworkHoldersTest, OneHolderPerKindKeptFromJobToJob) {
  HolderEngine engine;
  NetworkHolders holders(engine, {{kLabelHolderNode, "n1"}}, {"no-new-privileges"});
  std::string program = holders.For("program", "img:1");
  std::string ingestion = holders.For("ingestion", "img:1");
  ASSERT_EQ(program, "container:holder0");
  ASSERT_EQ(ingestion, "container:holder1");
  EXPECT_EQ(holders.For("program", "img:1"), program);  // the next job's
  EXPECT_EQ(engine.created.size(), 2u);

  const ContainerSpec& spec = engine.created.at("holder0");
  EXPECT_EQ(spec.image, "img:1");
  EXPECT_EQ(spec.entrypoint, (std::vector<std::string>{"sh", "-c", kHolderCommand}));
  EXPECT_TRUE(spec.open_stdin);
  EXPECT_FALSE(spec.network_disabled);
  EXPECT_TRUE(spec.network_mode.empty());  // the engine's default network
  EXPECT_EQ(spec.cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(spec.labels.at(kLabelHolderNode), "n1");  // swept with the node's
  EXPECT_FALSE(spec.labels.count("org.codabench.node")) << "the node's job containers only";
  EXPECT_EQ(spec.labels.at(kLabelNetworkHolder), "program");
  EXPECT_GT(spec.pids_limit, 0);
  EXPECT_GT(spec.memory_bytes, 0);
}

TEST(NetworkHoldersTest, AnotherImageOrAStoppedHolderGetsANewOne) {
  HolderEngine engine;
  NetworkHolders holders(engine, {}, {});
  EXPECT_EQ(holders.For("program", "img:1"), "container:holder0");
  // A job in another image: the old holder goes, so it keeps no image the
  // slot no longer uses.
  EXPECT_EQ(holders.For("program", "img:2"), "container:holder1");
  EXPECT_EQ(engine.removed, std::vector<std::string>{"holder0"});
  // The engine restarted (or someone stopped it).
  engine.running.clear();
  EXPECT_EQ(holders.For("program", "img:2"), "container:holder2");
  EXPECT_EQ(engine.removed, (std::vector<std::string>{"holder0", "holder1"}));
}

TEST(NetworkHoldersTest, NoHolderMeansANetworkOfItsOwn) {
  HolderEngine engine;
  NetworkHolders holders(engine, {}, {});
  engine.fail_create = true;
  EXPECT_EQ(holders.For("program", "img:1"), "");
  engine.fail_create = false;
  engine.exits_at_once = true;  // an image whose sh is not a shell
  EXPECT_EQ(holders.For("program", "img:1"), "");
  EXPECT_TRUE(engine.created.empty()) << "the holder that stopped was removed";
  engine.exits_at_once = false;
  EXPECT_EQ(holders.For("program", "img:1"), "container:holder1");
}

TEST(NetworkHoldersTest, AHolderTheEngineWillNotRemoveYetIsRemovedLater) {
  HolderEngine engine;
  NetworkHolders holders(engine, {}, {});
  EXPECT_EQ(holders.For("program", "img:1"), "container:holder0");
  engine.refuse_remove = true;
  EXPECT_EQ(holders.For("program", "img:2"), "container:holder1");
  EXPECT_TRUE(engine.created.count("holder0")) << "refused, so still there";
  engine.refuse_remove = false;  // the janitor removed the last job's programs
  EXPECT_EQ(holders.For("program", "img:2"), "container:holder1");
  EXPECT_FALSE(engine.created.count("holder0"));
}

TEST(NetworkHoldersTest, TheyGoWithTheSlot) {
  HolderEngine engine;
  {
    NetworkHolders holders(engine, {}, {});
    holders.For("program", "img:1");
    holders.For("ingestion", "img:1");
    ASSERT_EQ(engine.created.size(), 2u);
  }
  EXPECT_TRUE(engine.created.empty());
}

}  // namespace
}  // namespace cw
