#include "engine/image_budget.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine/image_ref.h"

namespace cw {
namespace fs = std::filesystem;

std::string NormalizeImageName(const std::string& image) {
  auto ref = ParseImageRef(image);
  if (!ref.ok()) return image;
  std::string repo = ref->repository;
  for (const char* prefix : {"docker.io/library/", "docker.io/", "index.docker.io/library/",
                             "index.docker.io/"}) {
    if (repo.rfind(prefix, 0) == 0) {
      repo = repo.substr(std::string(prefix).size());
      break;
    }
  }
  if (!ref->digest.empty()) return repo + "@" + ref->digest;
  return repo + ":" + (ref->tag.empty() ? "latest" : ref->tag);
}

namespace {

// The record under HOST_DIRECTORY: normalized name -> unix seconds last used.
std::map<std::string, long long> LoadRecord(const fs::path& record) {
  std::map<std::string, long long> last_used;
  std::ifstream in(record);
  if (!in) return last_used;
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    spdlog::warn("ignoring {}: not the worker's record of images", record.string());
    return last_used;
  }
  for (auto& [name, when] : j.items()) {
    if (when.is_number_integer()) last_used[name] = when.get<long long>();
  }
  return last_used;
}

}  // namespace

ImageBudget::ImageBudget(ContainerEngine& engine, std::uint64_t max_bytes, fs::path record,
                         std::function<long long()> now_unix, bool podman)
    : engine_(engine),
      max_bytes_(max_bytes),
      record_(std::move(record)),
      now_(std::move(now_unix)),
      podman_(podman),
      last_used_(LoadRecord(record_)) {
  if (!now_) {
    now_ = [] {
      return static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
    };
  }
}

std::string ImageBudget::RecordedName(const std::string& tag) const {
  std::string name = NormalizeImageName(tag);
  if (podman_ && name.rfind(kPodmanLocalPrefix, 0) == 0 && !last_used_.count(name)) {
    std::string short_name = name.substr(kPodmanLocalPrefix.size());
    if (last_used_.count(short_name) || in_use_.count(short_name)) return short_name;
  }
  return name;
}

void ImageBudget::SaveLocked() {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, when] : last_used_) j[name] = when;
  std::error_code ec;
  fs::create_directories(record_.parent_path(), ec);
  fs::path tmp = record_;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) {
      spdlog::warn("cannot write {}", tmp.string());
      return;
    }
  }
  fs::rename(tmp, record_, ec);
  if (ec) spdlog::warn("cannot write {}: {}", record_.string(), ec.message());
}

void ImageBudget::Acquire(const std::string& image) {
  MutexLock lock(mu_);
  std::string name = NormalizeImageName(image);
  ++in_use_[name];
  last_used_[name] = now_();
  SaveLocked();
}

void ImageBudget::Release(const std::string& image) {
  MutexLock lock(mu_);
  std::string name = NormalizeImageName(image);
  auto it = in_use_.find(name);
  if (it != in_use_.end() && --it->second <= 0) in_use_.erase(it);
  last_used_[name] = now_();
  SaveLocked();
}

Result<ImageBudget::Outcome> ImageBudget::Enforce() {
  auto out = Sweep();
  if (out.ok() && on_measured_) on_measured_(out->after_bytes);
  return out;
}

Result<ImageBudget::Outcome> ImageBudget::Sweep() {
  // Held across the engine's calls: two sweeps at once would both count
  // the same store and remove twice what is needed. It cannot deadlock: only
  // here is it taken, mu_ is taken under it (never the other way), and the
  // engine never calls back into the budget.
  MutexLock sweep(enforce_mu_);
  Outcome out;
  CW_ASSIGN_OR_RETURN(out.before_bytes, engine_.ImageStoreBytes());
  out.after_bytes = out.before_bytes;
  if (max_bytes_ == 0 || static_cast<std::uint64_t>(out.before_bytes) <= max_bytes_) return out;

  CW_ASSIGN_OR_RETURN(std::vector<ImageInfo> images, engine_.ListImages());
  struct Candidate {
    long long last_used;
    std::vector<std::string> names;  // every recorded tag of one image
  };
  std::vector<Candidate> candidates;
  {
    MutexLock lock(mu_);
    for (const ImageInfo& info : images) {
      Candidate c{-1, {}};
      bool busy = false;
      for (const std::string& tag : info.repo_tags) {
        std::string name = RecordedName(tag);
        if (in_use_.count(name)) busy = true;
        auto it = last_used_.find(name);
        if (it == last_used_.end()) continue;
        c.names.push_back(name);
        c.last_used = std::max(c.last_used, it->second);
      }
      // Tags this worker never used keep the image: someone else wants it.
      if (busy || c.names.empty() || c.names.size() != info.repo_tags.size()) continue;
      candidates.push_back(std::move(c));
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.last_used < b.last_used; });
  for (const Candidate& c : candidates) {
    if (static_cast<std::uint64_t>(out.after_bytes) <= max_bytes_) break;
    bool removed = true;
    for (const std::string& name : c.names) {
      {
        // A job may have started on it since the list was made.
        MutexLock lock(mu_);
        if (in_use_.count(name)) {
          removed = false;
          break;
        }
      }
      Status st = engine_.RemoveImage(name);
      if (!st.ok()) {
        spdlog::info("image {} stays: {}", name, st.message());
        removed = false;
        break;
      }
      MutexLock lock(mu_);
      last_used_.erase(name);
      out.removed.push_back(name);
    }
    if (!removed) continue;
    auto now = engine_.ImageStoreBytes();
    if (!now.ok()) return now.status();
    out.after_bytes = *now;
  }
  {
    MutexLock lock(mu_);
    SaveLocked();
  }
  return out;
}

}  // namespace cw
