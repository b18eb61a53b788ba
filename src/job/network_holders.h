// Fresh network namespaces for a slot's programs, made before they are
// needed, as a Kubernetes pod's sandbox is: each holder is a container of
// the worker's own image (sandbox/sandbox_image.h) that only waits, on the
// worker's network, with a hostname of its own. A program joins one
// (`NetworkMode: container:<id>`), gets its interface, its /etc/hosts,
// /etc/resolv.conf and hostname, and the job removes the holder after the
// program: no namespace, and none of those files, ever serves two programs.
//
// The speed: a busybox container's create, start and wait took ~340 ms
// with a network of its own and ~125 ms joining a ready namespace
// (docs/design.md, "Where the time goes"). The spares are made in the
// background while the slot's current job runs, so the next job's
// programs find theirs ready; `spares` is two, as a job's ingestion and
// submission start together.
//
// Thread rules: Take and Prepare may be called from any thread (a slot's
// job threads); the spares are made on the pool's own thread
// (common/spare_pool.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/spare_pool.h"
#include "engine/engine.h"
#include "job/job_environment.h"

namespace cw {

// The label every holder carries.
inline constexpr const char* kLabelNetworkHolder = "org.codabench.network-holder";
// The node a queue worker's holders (and its start-up GPU check's container,
// worker/slot_environments.h) belong to (not org.codabench.node, which only
// its job containers carry); a restart's sweep removes both.
inline constexpr const char* kLabelHolderNode = "org.codabench.network-holder-node";

struct NetworkHolderOptions {
  std::string image;    // the worker's own (sandbox_image.h)
  std::string network;  // where the holders sit; "" = the engine's default network
  std::map<std::string, std::string> labels;  // beside kLabelNetworkHolder
  std::vector<std::string> security_opt;      // the job containers' own
  int spares = 2;                             // kept ready
  // Networks ("10.89.1.0/24") a program joining a holder must not reach: the
  // holder, given CAP_NET_ADMIN in its own namespace only, adds a
  // "prohibit" route to each before it waits (`/sandbox hold NET...`), and
  // the program, without that capability, cannot remove them. A holder that
  // cannot add them exits, and Take discards it: no program joins a
  // namespace without its routes. Empty: none (Docker's one network keeps
  // its containers apart itself).
  std::vector<std::string> prohibit;
};

class NetworkHolders {
 public:
  NetworkHolders(ContainerEngine& engine, NetworkHolderOptions options);
  // Stops making spares and removes those no program took.
  ~NetworkHolders();
  NetworkHolders(const NetworkHolders&) = delete;
  NetworkHolders& operator=(const NetworkHolders&) = delete;

  // Starts making the spares, so the first job finds them ready.
  void Prepare();

  // The id of a running holder no program has joined, now the caller's
  // alone: it removes it after the program that joined it. A spare when
  // one is ready (and another is then made in the background), else one
  // made now. When none can be made: "" (the program then gets a network of
  // its own) where the network keeps programs apart itself, and
  // Unavailable where only the holders' routes do (`prohibit` not empty):
  // a program never sits on such a network without them. There a holder
  // made now is inspected before it is given, as a spare is. `kind` names the
  // program in the log and the error ("submission", "scoring program").
  Result<std::string> Take(const std::string& kind);

  // Spares ready now.
  std::size_t ready() const;

  // What a holder runs: the program of the worker's own image.
  static ContainerSpec HolderSpec(const NetworkHolderOptions& options);

 private:
  Result<std::string> Make();
  void Discard(const std::string& id);  // removes it, or says it could not

  ContainerEngine& engine_;
  const NetworkHolderOptions options_;
  SparePool<std::string> spares_;  // ids made and started; last: goes first
};

// The network the programs of slot `slot` sit on (c.network, from
// COMPETITION_CONTAINER_NETWORK), made when missing with traffic between its
// containers off. Podman has no such switch: under it each slot of each
// node gets a network of its own ("<name>-<node digest>-<slot>"), isolated
// from the others. Returns "" for the engine's default network: none set,
// none wanted (network disabled) or it cannot be made (an error in the log).
std::string EnsureProgramNetwork(const ContainerOptions& c, const std::string& nodename, int slot,
                                 ContainerEngine& engine);

// For each slot's network in `networks` (EnsureProgramNetwork's), the
// subnets of the other slots' networks, for NetworkHolderOptions.prohibit.
// Podman's isolation between networks is its firewall's, which does not hold
// on every host (netavark 1.4 beside Docker: README "Engines"), so under it
// a slot's holders also refuse the routes to the others. A slot on the same
// network as another, or on the engine's default network (""), prohibits
// nothing, nor does one whose network the engine cannot describe (logged).
std::vector<std::vector<std::string>> OtherSlotsSubnets(const std::vector<std::string>& networks,
                                                        ContainerEngine& engine);

}  // namespace cw
