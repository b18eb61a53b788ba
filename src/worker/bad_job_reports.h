// Telling the site about a message the worker could not run (bad run_args,
// or a job that tripped the worker), off the broker thread and off the slots:
// the report is an HTTP call with retries. A bounded queue: a flood of bad
// messages must not grow memory without bound; past it, reports are dropped
// and logged. A cold shutdown abandons what is left, the one being sent too.
//
// Threads: Queue and pending from any thread; Abandon from any thread but
// the reporting one (it joins it). The reports run on the executor's thread,
// in an AbandonScope that Abandon sets.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/serial_executor.h"

namespace cw {

// Tells the site that a message it sent could not be run (bad run_args, or
// the worker failed on it), when the message says enough to reach the site.
// Best effort. Its retries should give up when AbandonScope::Abandoned().
using BadJobFn = std::function<void(const nlohmann::json& run_args, const std::string& reason)>;

class BadJobReports {
 public:
  // `report` may be empty: then nothing is ever reported.
  BadJobReports(BadJobFn report, std::size_t max_pending);
  ~BadJobReports();

  // Hands a report to the reporting thread; never blocks on the site.
  void Queue(nlohmann::json raw_args, std::string reason);
  // Reports waiting or being sent.
  int pending() const;
  // Drops the waiting reports, makes the one being sent give up, and joins
  // the thread (logged when any were left). Later Queue calls do nothing.
  void Abandon();

 private:
  BadJobFn report_;
  const std::size_t max_pending_;
  std::atomic<bool> abandoned_{false};
  SerialExecutor executor_;  // last: its thread may run reports that use the above
};

}  // namespace cw
