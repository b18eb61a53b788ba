// Celery's remote control, as `celery inspect` / `control` and Codabench's
// site use it: ping, revoke, active, revoked, registered, stats,
// active_queues. Answers from the ledger; never waits on a job or the site.
//
// Threads: Answer is called on the broker thread; it only takes the ledger's
// lock. No state of its own beyond what the constructor sets.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "broker/celery.h"
#include "worker/delivery_ledger.h"

namespace cw {

class RemoteControl {
 public:
  RemoteControl(std::string nodename, int slots, DeliveryLedger& ledger)
      : nodename_(std::move(nodename)), slots_(slots), ledger_(ledger) {}

  // The reply to `message` ({"error": ...} for a command it does not know).
  nlohmann::json Answer(const ControlMessage& message);

 private:
  nlohmann::json Revoke(const nlohmann::json& arguments);
  nlohmann::json Active() const;

  const std::string nodename_;
  const int slots_;
  DeliveryLedger& ledger_;
};

}  // namespace cw
