#include "common/recent_ids.h"

namespace cw {

void RecentIds::Add(const std::string& id) {
  if (ids_.insert(id).second) order_.push_back(id);
  while (order_.size() > capacity_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace cw
