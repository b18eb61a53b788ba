#include "broker/backoff.h"

#include <algorithm>

namespace cw {

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed)
    : min_(std::max(min, std::chrono::milliseconds(1))), max_(std::max(max, min_)), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  auto ceiling = min_;
  for (int i = 0; i < attempt_ && ceiling < max_; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, max_);
  ++attempt_;
  std::uniform_int_distribution<std::int64_t> draw(std::max(min_.count(), ceiling.count() / 2),
                                                   ceiling.count());
  return std::chrono::milliseconds(draw(rng_));
}

}  // namespace cw
