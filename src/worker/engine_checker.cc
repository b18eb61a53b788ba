#include "worker/engine_checker.h"

namespace cw {

EngineChecker::EngineChecker(const std::string& socket, Report report,
                             std::chrono::milliseconds interval)
    : engine_(socket), report_(std::move(report)) {
  executor_.Repeat(interval, [this] {
    auto version = engine_.Version();
    report_(version.ok(), version.ok() ? "" : version.status().message());
  });
}

}  // namespace cw
