// A bound on walking a YAML document. Anchors and aliases let a few hundred
// bytes stand for a tree of billions of nodes ("billion laughs"), and an alias
// inside its own anchor for an infinite one: yaml-cpp loads both as a small
// shared (or cyclic) node graph, and it is whoever walks the graph as a tree
// that blows up. CheckYamlBudget walks it as that tree, counting, and stops
// at the first bound passed, so a walk made after it passed is bounded too.
//
// Header-only on purpose: cw_common does not link yaml-cpp; only the parts
// that do (job, bundle) include this file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace cw {

struct YamlBudget {
  std::uint64_t max_nodes = 100000;           // nodes in the expanded tree, keys included
  int max_depth = 64;                         // nesting of lists and mappings
  std::uint64_t max_scalar_bytes = 4u << 20;  // text of all scalars in the expanded tree
};

namespace yaml_budget_internal {

struct Walk {
  Walk(const std::string& what_, const YamlBudget& budget_) : what(what_), budget(budget_) {}

  const std::string& what;
  const YamlBudget& budget;
  std::uint64_t nodes = 0;
  std::uint64_t bytes = 0;
  std::vector<YAML::Node> path;  // the lists and mappings above the node being visited

  Status TooMuch() const {
    return InvalidInput(what + " expands to more than " + std::to_string(budget.max_nodes) +
                        " values (YAML anchors/aliases?)");
  }

  Status Visit(const YAML::Node& node) {
    if (++nodes > budget.max_nodes) return TooMuch();
    if (node.IsScalar()) {
      bytes += node.Scalar().size();
      if (bytes > budget.max_scalar_bytes) {
        return InvalidInput(what + " expands to more than " +
                            std::to_string(budget.max_scalar_bytes >> 20) +
                            " MB of text (YAML anchors/aliases?)");
      }
      return Status::Ok();
    }
    if (!node.IsSequence() && !node.IsMap()) return Status::Ok();
    for (const YAML::Node& above : path) {
      if (above.is(node)) {
        std::string at;
        if (!node.Mark().is_null()) at = " on line " + std::to_string(node.Mark().line + 1);
        return InvalidInput(what + " refers to itself: the YAML anchor" + at +
                            " is used inside itself");
      }
    }
    if (static_cast<int>(path.size()) >= budget.max_depth) {
      return InvalidInput(what + " is nested more than " + std::to_string(budget.max_depth) +
                          " levels deep");
    }
    path.push_back(node);
    Status status;
    for (auto it = node.begin(); it != node.end() && status.ok(); ++it) {
      if (node.IsMap()) {
        status = Visit(it->first);
        if (status.ok()) status = Visit(it->second);
      } else {
        status = Visit(*it);
      }
    }
    path.pop_back();
    return status;
  }
};

}  // namespace yaml_budget_internal

// Ok when `root`, with every alias expanded, stays within `budget`; otherwise
// InvalidInput, one line starting with `what` (the file's name, say):
//   "scores.txt expands to more than 100000 values (YAML anchors/aliases?)"
//   "scores.txt refers to itself: the YAML anchor on line 2 is used inside itself"
//   "scores.txt is nested more than 64 levels deep"
// Recursion is bounded by max_depth. May throw what yaml-cpp or the allocator
// throws; callers already catch those around loading.
inline Status CheckYamlBudget(const YAML::Node& root, const std::string& what,
                              const YamlBudget& budget = {}) {
  yaml_budget_internal::Walk walk(what, budget);
  return walk.Visit(root);
}

}  // namespace cw
