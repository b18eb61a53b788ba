#include "job/network_holders.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

namespace cw {

NetworkHolders::NetworkHolders(ContainerEngine& engine, std::map<std::string, std::string> labels,
                               std::vector<std::string> security_opt)
    : engine_(engine), labels_(std::move(labels)), security_opt_(std::move(security_opt)) {}

NetworkHolders::~NetworkHolders() { Clear(); }

NetworkHolders::Holder& NetworkHolders::Of(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = holders_[kind];
  if (!slot) slot = std::make_unique<Holder>();
  return *slot;
}

void NetworkHolders::Discard(const std::string& id) {
  Status removed = engine_.Remove(id, /*force=*/true);
  if (removed.ok()) return;
  spdlog::debug("network holder {} not removed yet: {}", id.substr(0, 12), removed.message());
  std::lock_guard<std::mutex> lock(mu_);
  discarded_.push_back(id);
}

void NetworkHolders::RetryDiscarded() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ids.swap(discarded_);
  }
  for (const std::string& id : ids) Discard(id);
}

void NetworkHolders::Clear() {
  std::vector<Holder*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [kind, holder] : holders_) all.push_back(holder.get());
  }
  for (Holder* h : all) {
    std::lock_guard<std::mutex> lock(h->mu);
    if (h->id.empty()) continue;
    Discard(h->id);
    h->id.clear();
    h->image.clear();
  }
  RetryDiscarded();
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : discarded_) {
    spdlog::warn("could not remove network holder {}; the next start of this worker will",
                 id.substr(0, 12));
  }
}

std::string NetworkHolders::For(const std::string& kind, const std::string& image) {
  RetryDiscarded();
  Holder& h = Of(kind);
  std::lock_guard<std::mutex> lock(h.mu);
  if (!h.id.empty()) {
    if (h.image == image) {
      auto state = engine_.Inspect(h.id, /*with_size=*/false);
      if (state.ok() && state->running) return "container:" + h.id;
    }
    Discard(h.id);  // another image, or it stopped
    h.id.clear();
    h.image.clear();
  }
  ContainerSpec spec;
  spec.image = image;
  // Blocks for good in any image with a shell: stdin stays open, and nobody
  // ever writes to it. An engine that closes it anyway leaves `sleep`. The
  // image's own entrypoint is not run.
  spec.entrypoint = {"sh", "-c", kHolderCommand};
  spec.open_stdin = true;
  spec.labels = labels_;
  spec.labels[kLabelNetworkHolder] = kind;
  spec.cap_drop = {"ALL"};
  spec.security_opt = security_opt_;
  spec.pids_limit = 4;
  spec.memory_bytes = 32LL << 20;
  spec.log_driver = "none";
  auto id = engine_.Create(spec);
  Status started = id.ok() ? engine_.Start(*id) : id.status();
  // Still running a moment later: a holder whose shell found neither an open
  // stdin nor `sleep` is gone by then, and a program must not join it.
  for (int look = 0; look < 2 && started.ok(); ++look) {
    if (look > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto state = engine_.Inspect(*id, /*with_size=*/false);
    if (!state.ok()) {
      started = state.status();
    } else if (!state->running) {
      started = Internal("it stopped at once (exit code " + std::to_string(state->exit_code) + ")");
    }
  }
  if (!started.ok()) {
    spdlog::warn("no shared network namespace for {} programs ({}); each gets its own network",
                 kind, started.message());
    if (id.ok()) Discard(*id);
    return "";
  }
  h.id = *id;
  h.image = image;
  spdlog::debug("network holder {} for {} programs, from {}", h.id.substr(0, 12), kind, image);
  return "container:" + h.id;
}

}  // namespace cw
