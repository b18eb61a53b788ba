#include "job/network_holders.h"

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "config/config.h"
#include "storage/hash.h"

namespace cw {

NetworkHolders::NetworkHolders(ContainerEngine& engine, NetworkHolderOptions options)
    : engine_(engine),
      options_(std::move(options)),
      spares_("a network holder", options_.spares, [this] { return Make(); },
              [this](const std::string& id) { Discard(id); }) {}

NetworkHolders::~NetworkHolders() = default;

void NetworkHolders::Discard(const std::string& id) {
  Status removed = engine_.Remove(id, /*force=*/true);
  if (!removed.ok()) {
    spdlog::warn("could not remove network holder {} ({}); the next start of this worker will",
                 id.substr(0, 12), removed.message());
  }
}

ContainerSpec NetworkHolders::HolderSpec(const NetworkHolderOptions& options) {
  ContainerSpec spec;
  spec.image = options.image;
  spec.entrypoint = {"/sandbox"};  // waits for SIGTERM
  if (!options.prohibit.empty()) {
    spec.cmd = {"hold"};
    spec.cmd.insert(spec.cmd.end(), options.prohibit.begin(), options.prohibit.end());
  }
  spec.network_mode = options.network;
  // Each its own, as the engine gives a container of its own network.
  spec.hostname = RandomHex(6);
  spec.labels = options.labels;
  spec.labels[kLabelNetworkHolder] = "true";
  spec.cap_drop = {"ALL"};
  // In the holder's own network namespace only: a program joining it gets
  // the capabilities of its own container, never the holder's.
  if (!options.prohibit.empty()) spec.cap_add = {"NET_ADMIN"};
  spec.security_opt = options.security_opt;
  spec.pids_limit = 4;
  spec.memory_bytes = 32LL << 20;
  spec.log_driver = "none";
  return spec;
}

Result<std::string> NetworkHolders::Make() {
  CW_ASSIGN_OR_RETURN(std::string id, engine_.Create(HolderSpec(options_)));
  Status started = engine_.Start(id);
  if (!started.ok()) {
    Discard(id);
    return started;
  }
  return id;
}

std::size_t NetworkHolders::ready() const { return spares_.ready(); }

void NetworkHolders::Prepare() { spares_.Prepare(); }

Result<std::string> NetworkHolders::Take(const std::string& kind) {
  std::string id;
  while (std::optional<std::string> spare = spares_.Take()) {
    id = *spare;
    // A spare an engine restart stopped is of no use.
    Result<ContainerState> state = engine_.Inspect(id, /*with_size=*/false);
    if (state.ok() && state->running) break;
    if (state.ok() && state->exit_code != 0) {
      // /sandbox could not add its routes (CAP_NET_ADMIN refused?): the
      // program takes the next, or one made now, never this namespace.
      spdlog::warn("network holder {} exited with code {}; not used", id.substr(0, 12),
                   state->exit_code);
    }
    Discard(id);
    id.clear();
  }
  if (id.empty()) {
    Result<std::string> made = Make();
    if (made.ok() && !options_.prohibit.empty()) {
      // Made now, so not yet looked at: one that could not add its routes
      // exits at once, and a program must not join what it left.
      Result<ContainerState> state = engine_.Inspect(*made, /*with_size=*/false);
      if (!state.ok() || !state->running) {
        Discard(*made);
        made = Unavailable(state.ok() ? "its network holder exited with code " +
                                            std::to_string(state->exit_code)
                                      : state.status().message());
      }
    }
    if (made.ok()) {
      id = *made;
    } else if (!options_.prohibit.empty()) {
      Prepare();
      spdlog::error("no network holder for the {} ({}); without one nothing keeps it "
                    "from the other slots' programs, so it does not run",
                    kind, made.status().message());
      return Unavailable("this worker could not make the " + kind +
                         "'s network, which keeps it apart from other jobs (" +
                         made.status().message() + ")");
    } else {
      spdlog::warn("no network holder for the {} ({}); it gets a network of its own", kind,
                   made.status().message());
    }
  }
  Prepare();
  if (!id.empty()) spdlog::debug("the {} joins network holder {}", kind, id.substr(0, 12));
  return id;
}

std::string EnsureProgramNetwork(const ContainerOptions& c, const std::string& nodename, int slot,
                                 ContainerEngine& engine) {
  std::string network = c.network;
  if (c.network_disabled || network.empty() || network == "bridge" || network == "default") {
    return "";
  }
  if (c.podman && network == kDefaultContainerNetwork) {
    network += "-" + Sha256Hex(nodename).substr(0, 8) + "-" + std::to_string(slot);
  }
  Status made = engine.EnsureNetwork(network, {{"org.codabench.worker", "codabench-worker"}});
  if (!made.ok()) {
    spdlog::error("cannot make network {} ({}): programs run on the engine's default network, "
                  "where programs of other jobs can reach them",
                  network, made.message());
    return "";
  }
  if (slot == 0 || network != c.network) spdlog::info("programs run on network {}", network);
  return network;
}

std::vector<std::vector<std::string>> OtherSlotsSubnets(const std::vector<std::string>& networks,
                                                        ContainerEngine& engine) {
  std::map<std::string, std::vector<std::string>> subnets;
  for (const std::string& network : networks) {
    if (network.empty() || subnets.count(network)) continue;
    Result<std::vector<std::string>> found = engine.NetworkSubnets(network);
    if (!found.ok()) {
      spdlog::error("cannot read the subnets of network {} ({}): other slots' programs are "
                    "not kept from it by routes",
                    network, found.status().message());
      continue;
    }
    subnets[network] = *found;
  }
  std::vector<std::vector<std::string>> out(networks.size());
  for (std::size_t i = 0; i < networks.size(); ++i) {
    if (networks[i].empty()) continue;
    for (const auto& [network, nets] : subnets) {
      if (network == networks[i]) continue;
      out[i].insert(out[i].end(), nets.begin(), nets.end());
    }
  }
  return out;
}

}  // namespace cw
