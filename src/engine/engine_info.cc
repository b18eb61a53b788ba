// What an engine's host cannot do, from its GET /info (engine/engine.h).
#include "engine/engine.h"

namespace cw {

bool StatsArePerContainer(const EngineInfo& info) {
  return !info.rootless || info.cgroup_version != "1";
}

std::string UnenforcedLimits(const EngineInfo& info) {
  if (StatsArePerContainer(info)) return "";
  // Podman's own words: "Resource limits are not supported and ignored on
  // cgroups V1 rootless systems".
  return "the container engine runs rootless on cgroups v1, where it cannot enforce resource "
         "limits: the programs' memory (CONTAINER_MEMORY), CPU (CONTAINER_CPUS, the slots' CPU "
         "sets) and process (CONTAINER_PIDS_LIMIT) limits are not enforced; run the engine as "
         "root or on cgroups v2 to have them";
}

}  // namespace cw
