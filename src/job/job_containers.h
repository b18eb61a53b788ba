// The containers a job created, so it can kill them (a cancel, the time
// limit, the output limit) and remove them (its cleanup), and the disk
// watcher can size their layers.
//
// Thread rules: every method may be called from any thread; mu_ guards
// ids_. Kill and Remove call the engine under the lock, so a container
// added meanwhile waits for them.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/engine.h"

namespace cw {

class JobContainers {
 public:
  void Add(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(id);
  }
  std::vector<std::string> Ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  // The ids, which this set forgets: for a cleanup that runs later.
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> ids;
    ids.swap(ids_);
    return ids;
  }
  void KillAll(ContainerEngine& engine) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& id : ids_) {
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
  void RemoveAll(ContainerEngine& engine) {
    std::lock_guard<std::mutex> lock(mu_);
    Remove(engine, ids_);
    ids_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> ids_;  // guarded by mu_
};

}  // namespace cw
