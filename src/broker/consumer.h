// The broker thread: keeps one connection to the Codabench queue's vhost
// alive for as long as the worker runs, hands task messages and pidbox
// commands to the worker, and carries out its acks.
//
// Channel 1 carries the task queue and nothing else, so that a mistake on the
// control side (a reply to an exchange declared otherwise, say) can never
// close the channel that holds the unacked jobs: RabbitMQ would requeue them
// and another worker would run them a second time. Channel 2 carries the
// pidbox, its replies and the events, and is reopened on its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "broker/amqp_client.h"
#include "broker/backoff.h"
#include "broker/broker_url.h"
#include "broker/celery.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace cw {

class BrokerHandler {  // implemented by the worker
 public:
  virtual ~BrokerHandler() = default;
  // A task message for the compute-worker queue. Called on the broker thread;
  // must return quickly. `epoch` identifies the connection it came on.
  virtual void OnDelivery(std::uint64_t epoch, Delivery delivery) = 0;
  // A pidbox command addressed to this node. Returns the reply (sent when the
  // message has a reply_to), or null for none. Called on the broker thread.
  virtual nlohmann::json OnControl(const ControlMessage& message) = 0;
  // Connection state changes, for logs and `doctor`.
  virtual void OnConnectionState(bool /*connected*/, const std::string& /*detail*/) {}
};

struct ConsumerOptions {
  std::string queue = "compute-worker";  // also exchange and routing key
  int prefetch = 1;
  std::string nodename;  // "compute-worker@<hostname>"
  ConnectOptions connect;
  bool send_events = true;  // worker-online/heartbeat/offline to celeryev
  std::chrono::milliseconds reconnect_min{1000}, reconnect_max{30000};
};

class QueueConsumer {
 public:
  QueueConsumer(BrokerAddress address, ConsumerOptions options, BrokerHandler& handler);
  ~QueueConsumer();
  QueueConsumer(const QueueConsumer&) = delete;
  QueueConsumer& operator=(const QueueConsumer&) = delete;

  // Runs until `stop` is set: connect, declare, consume; on any connection
  // loss, reconnect with exponential backoff (jittered) and log why (password
  // redacted). Unacked messages go back to the queue when it returns.
  void Run(const std::atomic<bool>& stop);

  // Thread-safe; they wake the broker thread, which sends them at once (well
  // under a millisecond when it is idle). An ack for an older epoch (a
  // connection that has since been lost) is dropped with a debug log: that
  // delivery will be redelivered by the broker.
  void Ack(std::uint64_t epoch, std::uint64_t delivery_tag);
  void Reject(std::uint64_t epoch, std::uint64_t delivery_tag, bool requeue);
  // Thread-safe: the warm shutdown's first step. The broker thread sends
  // basic.cancel for the task queue at once, so the broker gives its messages
  // to other workers; unacked deliveries stay ours until acked or rejected,
  // and the pidbox (ping, revoke) keeps working. Lasting: a reconnect does
  // not consume again.
  void StopConsuming();
  bool consuming_stopped() const { return stop_consuming_; }
  void SetPrefetch(int prefetch);                  // thread-safe, applied with basic.qos
  void SetActiveCount(int active, int processed);  // for heartbeat events

  bool connected() const { return connected_; }
  std::uint64_t epoch() const { return epoch_; }

 private:
  struct PendingOp {
    bool ack = true;  // else reject
    std::uint64_t epoch = 0, delivery_tag = 0;
    bool requeue = false;
    std::chrono::steady_clock::time_point queued;  // for the queued-to-sent delay
  };
  void Queue(PendingOp op);
  void Wake();
  void DrainWake();

  // One connection's life; returns why it ended (OK when `stop` was set).
  Status Session(AmqpClient& client, const std::atomic<bool>& stop, Backoff& backoff);
  Status SetUpTasks(AmqpClient& client);
  Status SetUpControl(AmqpClient& client);
  Status ApplyPending(AmqpClient& client, std::uint64_t epoch);
  Status CancelTaskConsumer(AmqpClient& client);
  void HandleControl(AmqpClient& client, const Delivery& delivery);
  Status Reply(AmqpClient& client, const ControlMessage& message, const nlohmann::json& reply);
  void SendEvent(AmqpClient& client, const std::string& type);

  const BrokerAddress address_;
  const ConsumerOptions options_;
  BrokerHandler& handler_;

  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<int> prefetch_;
  std::atomic<int> active_{0}, processed_{0};

  Mutex mu_;  // never held across a broker call
  std::vector<PendingOp> pending_ GUARDED_BY(mu_);
  std::atomic<bool> stop_consuming_{false};
  int wake_fd_ = -1;  // eventfd: written by Ack/Reject/StopConsuming, read by the broker thread

  // Broker-thread state of the current session.
  int applied_prefetch_ = 0;
  std::string task_consumer_tag_;  // empty once cancelled (or never consumed)
  bool events_ = false;
  std::set<std::string> declared_reply_exchanges_;
};

}  // namespace cw
