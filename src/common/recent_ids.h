// The last N ids seen, oldest forgotten first: what a worker remembers of the
// tasks it finished or was told to revoke, so a redelivery or a late message
// is recognised without memory growing with every task.
// Not thread-safe: its owner's lock guards it.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_set>
#include <vector>

namespace cw {

class RecentIds {
 public:
  explicit RecentIds(std::size_t capacity) : capacity_(capacity) {}

  // Remembers `id` (again: it keeps its place); past the capacity the oldest
  // goes.
  void Add(const std::string& id);
  bool Contains(const std::string& id) const { return ids_.count(id) > 0; }
  std::size_t size() const { return ids_.size(); }
  // Oldest first.
  std::vector<std::string> List() const { return {order_.begin(), order_.end()}; }

 private:
  std::size_t capacity_;
  std::unordered_set<std::string> ids_;
  std::deque<std::string> order_;
};

}  // namespace cw
