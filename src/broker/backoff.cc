#include "broker/backoff.h"

#include <algorithm>

#include "common/backoff.h"

namespace cw {

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed)
    : min_(std::max(min, std::chrono::milliseconds(1))), max_(std::max(max, min_)), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  ++attempt_;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return std::min(JitteredDoubling(min_, max_, attempt_, unit(rng_), min_), max_);
}

}  // namespace cw
