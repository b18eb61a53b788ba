#include "common/abandon.h"

namespace cw {
namespace {
thread_local AbandonScope* g_current = nullptr;
}  // namespace

AbandonScope::AbandonScope(std::function<bool()> abandoned)
    : abandoned_(std::move(abandoned)), previous_(g_current) {
  g_current = this;
}

AbandonScope::AbandonScope(std::function<bool()> abandoned, const AbandonScope* also)
    : AbandonScope(std::move(abandoned)) {
  also_ = also;
}

AbandonScope::~AbandonScope() { g_current = previous_; }

bool AbandonScope::Says() const {
  return (abandoned_ && abandoned_()) || (also_ != nullptr && also_->Says());
}

bool AbandonScope::Abandoned() { return g_current != nullptr && g_current->Says(); }

const AbandonScope* AbandonScope::Current() { return g_current; }

bool AbandonScope::Active() { return g_current != nullptr; }

}  // namespace cw
