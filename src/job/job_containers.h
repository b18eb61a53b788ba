// The containers a job created, so it can kill them (a cancel, the time
// limit, the output limit) and remove them (its cleanup), and the disk
// watcher can size their layers.
//
// Thread rules: every method may be called from any thread; mu_ guards
// ids_ and is never held across an engine call: KillAll kills the ids it
// copied, RemoveAll removes those it took (a container added meanwhile is
// kept for the next call, as when it waited for the lock).
#pragma once

#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"
#include "engine/engine.h"

namespace cw {

class JobContainers {
 public:
  void Add(const std::string& id) {
    MutexLock lock(mu_);
    ids_.push_back(id);
  }
  std::vector<std::string> Ids() const {
    MutexLock lock(mu_);
    return ids_;
  }
  // The ids, which this set forgets: for a cleanup that runs later.
  std::vector<std::string> Take() {
    MutexLock lock(mu_);
    std::vector<std::string> ids;
    ids.swap(ids_);
    return ids;
  }
  void KillAll(ContainerEngine& engine) {
    for (const auto& id : Ids()) {
      Status st = engine.Kill(id);
      if (!st.ok()) spdlog::warn("kill {}: {}", id, st.ToString());
    }
  }
  // The last added first: a program before the network holder it joined
  // (podman refuses to remove a holder while a container that joined it is
  // there).
  static void Remove(ContainerEngine& engine, const std::vector<std::string>& ids) {
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
      const std::string& id = *it;
      Status st = engine.Remove(id, true);
      if (!st.ok()) spdlog::warn("remove {}: {}", id, st.ToString());
    }
  }
  void RemoveAll(ContainerEngine& engine) { Remove(engine, Take()); }

 private:
  mutable Mutex mu_;
  std::vector<std::string> ids_ GUARDED_BY(mu_);
};

}  // namespace cw
