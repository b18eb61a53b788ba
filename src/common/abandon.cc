#include "common/abandon.h"

namespace cw {
namespace {
thread_local AbandonScope* g_current = nullptr;
}  // namespace

AbandonScope::AbandonScope(std::function<bool()> abandoned)
    : abandoned_(std::move(abandoned)), previous_(g_current) {
  g_current = this;
}

AbandonScope::~AbandonScope() { g_current = previous_; }

bool AbandonScope::Abandoned() {
  return g_current != nullptr && g_current->abandoned_ && g_current->abandoned_();
}

bool AbandonScope::Active() { return g_current != nullptr; }

}  // namespace cw
