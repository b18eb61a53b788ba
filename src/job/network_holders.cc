#include "job/network_holders.h"

#include <spdlog/spdlog.h>

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

void NetworkHolders::Clear() {
  std::vector<Holder*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [kind, holder] : holders_) all.push_back(holder.get());
  }
  for (Holder* h : all) {
    std::lock_guard<std::mutex> lock(h->mu);
    if (h->id.empty()) continue;
    Status removed = engine_.Remove(h->id, /*force=*/true);
    if (!removed.ok()) spdlog::warn("could not remove network holder {}: {}", h->id.substr(0, 12), removed.ToString());
    h->id.clear();
    h->image.clear();
  }
}

std::string NetworkHolders::For(const std::string& kind, const std::string& image) {
  Holder& h = Of(kind);
  std::lock_guard<std::mutex> lock(h.mu);
  if (!h.id.empty()) {
    if (h.image == image) {
      auto state = engine_.Inspect(h.id, /*with_size=*/false);
      if (state.ok() && state->running) return "container:" + h.id;
    }
    (void)engine_.Remove(h.id, /*force=*/true);  // another image, or it stopped
    h.id.clear();
    h.image.clear();
  }
  ContainerSpec spec;
  spec.image = image;
  // Blocks for good in any image with a shell: stdin stays open, and nobody
  // ever writes to it. The image's own entrypoint is not run.
  spec.entrypoint = {"sh", "-c", "read _"};
  spec.open_stdin = true;
  spec.labels = labels_;
  spec.labels[kLabelNetworkHolder] = kind;
  spec.cap_drop = {"ALL"};
  spec.security_opt = security_opt_;
  spec.pids_limit = 4;
  spec.memory_bytes = 32LL << 20;
  spec.log_driver = "none";
  auto id = engine_.Create(spec);
  if (!id.ok()) {
    spdlog::warn("no shared network namespace for {} programs ({}); each gets its own network",
                 kind, id.status().message());
    return "";
  }
  Status started = engine_.Start(*id);
  if (started.ok()) {
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
    (void)engine_.Remove(*id, /*force=*/true);
    return "";
  }
  h.id = *id;
  h.image = image;
  spdlog::debug("network holder {} for {} programs, from {}", h.id.substr(0, 12), kind, image);
  return "container:" + h.id;
}

}  // namespace cw
