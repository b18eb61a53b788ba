#include "common/backoff.h"

#include <algorithm>

namespace cw {

std::chrono::milliseconds JitteredDoubling(std::chrono::milliseconds first,
                                           std::chrono::milliseconds max, int attempt,
                                           double unit_random, std::chrono::milliseconds floor) {
  double step = static_cast<double>(first.count());
  const double cap = static_cast<double>(max.count());
  for (int i = 1; i < attempt && step < cap; ++i) step *= 2;
  step = std::min(step, cap);
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  auto wait = std::chrono::milliseconds(static_cast<long long>(step / 2 + step / 2 * unit_random));
  return std::max(wait, floor);
}

}  // namespace cw
