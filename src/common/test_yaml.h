// YAML that hostile bundles and scoring programs send, for tests of the
// parsers that must refuse it (common/yaml_budget.h).
#pragma once

#include <string>

namespace cw::testing {

// Nine lines of anchors, each nine of the one before: 9^9 values once expanded.
inline std::string BillionLaughs() {
  std::string yaml = "a: &a [x,x,x,x,x,x,x,x,x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    yaml += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) yaml += (i ? ",*" : "*") + prev;
    yaml += "]\n";
  }
  return yaml;
}

}  // namespace cw::testing
