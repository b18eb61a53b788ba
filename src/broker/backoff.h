// How long to wait before the next reconnect: doubling from `min` up to
// `max`, each wait drawn at random from the upper half of its step (never
// under `min`) so that many workers cut off by the same broker restart do not
// all come back at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace cw {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max,
          std::uint64_t seed = std::random_device{}());

  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  std::chrono::milliseconds min_, max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace cw
