// The network namespaces a slot's job containers join, instead of each
// getting a network of its own: one long-lived container per program kind
// (ingestion, program) that only holds a namespace on the engine's default
// network, as a pod's pause container does. A busybox container's create,
// start and wait took ~340 ms with a network of its own and ~125 ms joining
// one (docs/design.md, "Where the time goes"). Programs keep the same reach:
// the holder is on the same network they would have been on.
//
// A slot runs one job at a time, so a namespace is shared only by the
// programs of one kind of that slot's successive jobs: never by two jobs at
// once, nor by a participant's submission and the organizers' ingestion
// program. Nothing a program does outlives it there: its processes end with
// its container, and changing the namespace needs capabilities no program
// has.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace cw {

// The label a holder carries, with the program kind it holds a namespace for.
inline constexpr const char* kLabelNetworkHolder = "org.codabench.network-holder";
// The node a queue worker's holders belong to (not org.codabench.node, which
// only its job containers carry); a restart's sweep removes both.
inline constexpr const char* kLabelHolderNode = "org.codabench.network-holder-node";
// What a holder runs, under `sh -c`.
inline constexpr const char* kHolderCommand = "read _; exec sleep 2147483647";

class NetworkHolders {
 public:
  // `labels` go on every holder (a queue worker's name its node with
  // kLabelHolderNode, so a restart's sweep removes what a killed run left);
  // `security_opt` is the job containers' own.
  NetworkHolders(ContainerEngine& engine, std::map<std::string, std::string> labels,
                 std::vector<std::string> security_opt);
  ~NetworkHolders();  // removes the holders
  NetworkHolders(const NetworkHolders&) = delete;
  NetworkHolders& operator=(const NetworkHolders&) = delete;

  // "container:<id>" of the running holder for programs of `kind`, made
  // from `image` (the job's: it has the `sh` the job needs anyway, and no
  // other image need be on the machine). A holder from another image is
  // replaced, so a holder never keeps an image the slot no longer uses; a
  // holder that stopped (an engine restart) is made again. "" when none can
  // be made: the program then gets a network of its own, as before.
  std::string For(const std::string& kind, const std::string& image);

  // Removes every holder now (they are made again when next needed).
  void Clear();

 private:
  struct Holder {
    std::mutex mu;  // one kind's holder is made while the other's is used
    std::string id;
    std::string image;
  };
  Holder& Of(const std::string& kind);
  // Removes a holder; podman refuses while containers that joined it are
  // still there (the janitor removes a job's a little later), so one it
  // refused is tried again at each later call.
  void Discard(const std::string& id);
  void RetryDiscarded();

  ContainerEngine& engine_;
  const std::map<std::string, std::string> labels_;
  const std::vector<std::string> security_opt_;
  std::mutex mu_;  // guards holders_ (the map, not the holders) and discarded_
  std::map<std::string, std::unique_ptr<Holder>> holders_;
  std::vector<std::string> discarded_;  // holders whose removal was refused
};

}  // namespace cw
