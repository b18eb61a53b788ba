#include "common/units.h"

#include <cstdio>

namespace cw {

std::uint64_t GbToBytes(double gb) { return gb > 0 ? static_cast<std::uint64_t>(gb * 1e9) : 0; }

std::string FormatGb(std::uint64_t bytes) {
  double gb = static_cast<double>(bytes) / 1e9;
  char text[64];
  if (gb >= 1000) {
    std::snprintf(text, sizeof text, "%.0f", gb);
  } else if (gb >= 0.01 || gb == 0) {
    std::snprintf(text, sizeof text, "%.2f", gb);
    std::string out = text;
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
    return out;
  } else {
    std::snprintf(text, sizeof text, "%.3g", gb);
  }
  return text;
}

}  // namespace cw
