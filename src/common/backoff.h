// The jittered doubling wait both retry loops use (broker reconnects, site
// calls): many workers cut off together must not come back together.
#pragma once

#include <chrono>

namespace cw {

// The wait before try number `attempt` (1-based) after a failure: `first`
// doubled per earlier attempt, capped at `max`, then a point in [half, whole]
// of that step chosen by `unit_random` in [0, 1], and never under `floor`.
std::chrono::milliseconds JitteredDoubling(std::chrono::milliseconds first,
                                           std::chrono::milliseconds max, int attempt,
                                           double unit_random,
                                           std::chrono::milliseconds floor = {});

}  // namespace cw
