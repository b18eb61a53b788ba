// The queue worker: turns broker deliveries into jobs for its slots, acks
// each message once its job is over, answers Celery's remote control (ping,
// revoke, active, ...), and makes sure a message handed out twice (after a
// broker reconnect) runs and reports once.
//
// It is the composition of its parts, each in a file of its own:
//   DeliveryLedger  which deliveries belong to which job; acks; the drain
//   SlotLoop        the slot threads and the janitor for finished jobs
//   RemoteControl   ping, inspect, revoke
//   BadJobReports   telling the site about messages it could not run
// and a watchdog that enforces Celery's time limits every interval.
//
// Threads: OnDelivery, OnControl and OnConnectionState on the broker thread;
// Start, BeginDrain and Shutdown on one controlling thread; the counters from
// any thread. Its own members are set in the constructor and never change
// (each part guards its own state).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "broker/consumer.h"
#include "common/serial_executor.h"
#include "worker/bad_job_reports.h"
#include "worker/delivery_ledger.h"
#include "worker/remote_control.h"
#include "worker/slot_loop.h"
#include "worker/status_board.h"

namespace cw {

struct WorkerOptions {
  std::string nodename = "compute-worker@localhost";
  int slots = 1;
  std::size_t remember_finished = 1000;  // task ids kept to recognise redeliveries
  std::chrono::milliseconds watchdog_interval{500};
  // Bad-job reports waiting for the reporting thread; more are dropped (and
  // logged): a flood of bad messages must not grow memory without bound.
  std::size_t max_pending_reports = 100;
  // Told of every change of the broker connection (on the broker thread; must
  // not block): the metrics and /readyz follow it.
  std::function<void(bool connected)> on_connection_state;
  // Told what each slot runs, the broker and a drain, for `status` (may be
  // null; must outlive the Worker).
  StatusBoard* status = nullptr;
};

class Worker : public BrokerHandler {
 public:
  // `bad_job` is called on the worker's own reporting thread, never on the
  // broker thread (see BadJobReports).
  Worker(WorkerOptions options, DeliveryAcker& acker, JobFn run_job, BadJobFn bad_job = {});
  ~Worker() override;

  void Start();
  // The warm shutdown: no job starts any more. Jobs queued here but not
  // started are rejected with requeue (the broker gives them to another
  // worker at once), and so is any delivery still arriving; running jobs go on
  // to their end, report and are acked. Returns the number still running.
  int BeginDrain();
  // Running jobs, their cleanups, and bad-job reports not yet sent: the warm
  // shutdown waits for this to reach 0.
  int busy() const;
  // The cold shutdown: stops taking jobs and cancels the running ones without
  // acking them, so the broker hands their messages to another worker; a
  // bad-job report still retrying is abandoned. Returns when the slots and the
  // reporting thread have stopped.
  void Shutdown();

  void OnDelivery(std::uint64_t epoch, Delivery delivery) override;
  nlohmann::json OnControl(const ControlMessage& message) override;
  void OnConnectionState(bool connected, const std::string& detail) override;

  int active() const { return ledger_.active(); }
  int processed() const { return ledger_.processed(); }
  int queued() const { return ledger_.queued(); }

 private:
  const WorkerOptions options_;
  DeliveryAcker& acker_;
  DeliveryLedger ledger_;
  BadJobReports reports_;
  SlotLoop slots_;
  RemoteControl control_;
  SerialExecutor watchdog_;  // Celery's time limits, every watchdog_interval
};

}  // namespace cw
