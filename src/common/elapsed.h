// Time on the steady clock, in the unit the job's timings and the metrics
// count it in.
#pragma once

#include <chrono>

namespace cw {

// Seconds from `start` to now.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace cw
