// One AMQP 0-9-1 connection (rabbitmq-c), used from one thread only. Every
// call is bounded in time; a lost connection is an Unavailable status whose
// message says what happened, never a hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "broker/broker_url.h"
#include "broker/celery.h"
#include "common/status.h"

struct amqp_rpc_reply_t_;

namespace cw {

struct ConnectOptions {
  int heartbeat_s = 30;  // 0 disables heartbeats
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds rpc_timeout{30000};  // login and every request/reply
  bool tls_verify = true;                        // false turns off both peer and host name checks
  std::string ca_file;                           // empty: the system's CA bundle
  std::string connection_name;  // shown by `rabbitmqctl list_connections client_properties`
};

// Options for a short look at the broker (doctor, the start-up check):
// 10 s to connect and for each request.
inline ConnectOptions ProbeConnectOptions(bool tls_verify, std::string ca_file,
                                          std::string connection_name) {
  ConnectOptions connect;
  connect.connect_timeout = std::chrono::seconds(10);
  connect.rpc_timeout = std::chrono::seconds(10);
  connect.tls_verify = tls_verify;
  connect.ca_file = std::move(ca_file);
  connect.connection_name = std::move(connection_name);
  return connect;
}

struct Delivery {
  std::string consumer_tag, exchange, routing_key;
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  MessageProperties props;
  std::string body;
  std::uint16_t channel = 1;
};

struct ExchangeSpec {
  std::string name;
  std::string type = "direct";
  bool durable = true;
  bool auto_delete = false;
};

struct QueueSpec {
  std::string name;
  bool durable = true;
  bool auto_delete = false;
  bool exclusive = false;
  nlohmann::json arguments = nlohmann::json::object();
};

struct QueueState {
  std::string name;
  std::uint32_t messages = 0;
  std::uint32_t consumers = 0;
};

class AmqpClient {
 public:
  static constexpr std::uint16_t kDefaultChannel = 1;

  AmqpClient();
  ~AmqpClient();  // closes politely when still connected
  AmqpClient(const AmqpClient&) = delete;
  AmqpClient& operator=(const AmqpClient&) = delete;

  // TCP or TLS, SASL PLAIN login, channel 1 opened.
  Status Connect(const BrokerAddress& address, const ConnectOptions& options);
  // connection.close, then the socket; safe to call twice.
  void Close();
  bool connected() const;

  Status OpenChannel(std::uint16_t channel);
  // False after the broker closed the channel (see channel_error) or before it
  // was opened. A closed channel must be reopened and its consumers set up again.
  bool channel_open(std::uint16_t channel) const;
  std::string channel_error(std::uint16_t channel) const;

  Status DeclareExchange(const ExchangeSpec& spec, std::uint16_t channel = kDefaultChannel);
  Result<QueueState> DeclareQueue(const QueueSpec& spec, std::uint16_t channel = kDefaultChannel);
  // A passive declare: NotFound when there is no such queue (that closes the
  // channel, as AMQP does for any failed passive declare).
  Result<QueueState> InspectQueue(const std::string& name, std::uint16_t channel = kDefaultChannel);
  Status DeleteQueue(const std::string& name, std::uint16_t channel = kDefaultChannel);
  Status Bind(const std::string& queue, const std::string& exchange, const std::string& routing_key,
              std::uint16_t channel = kDefaultChannel);
  // A limit for the whole channel, applied to its consumers at once.
  Status Qos(int prefetch, std::uint16_t channel = kDefaultChannel);
  // Returns the consumer tag the broker chose.
  Result<std::string> Consume(const std::string& queue, bool no_ack,
                              std::uint16_t channel = kDefaultChannel);
  // basic.cancel: the broker stops delivering to this consumer (and gives the
  // queue's messages to other consumers); unacked deliveries stay ours.
  Status CancelConsumer(const std::string& consumer_tag, std::uint16_t channel = kDefaultChannel);
  Status Ack(std::uint64_t delivery_tag, std::uint16_t channel = kDefaultChannel);
  Status Reject(std::uint64_t delivery_tag, bool requeue, std::uint16_t channel = kDefaultChannel);
  Status Publish(const std::string& exchange, const std::string& routing_key, std::string_view body,
                 const MessageProperties& props, std::uint16_t channel = kDefaultChannel);

  // The next message on any channel, or nullopt when none came within
  // `timeout`. Heartbeats are sent and checked while it waits, so call it
  // often (rabbitmq-c only services heartbeats inside calls). Unavailable when
  // the connection is gone; a channel the broker closed is only recorded
  // (channel_open) and the call goes on.
  //
  // With a `wake_fd` (an eventfd or pipe's read end), the wait also ends as
  // soon as that fd is readable: nullopt comes back at once and the caller
  // reads the fd. Frames rabbitmq-c has already buffered are taken first.
  Result<std::optional<Delivery>> NextDelivery(std::chrono::milliseconds timeout,
                                               int wake_fd = -1);

 private:
  struct Conn;  // the rabbitmq-c connection, kept out of this header

  // Turns a failed RPC into a readable Status, answering the broker's
  // channel.close or connection.close as the protocol requires.
  Status ReplyStatus(const amqp_rpc_reply_t_& reply, const std::string& what,
                     std::uint16_t channel);
  Status LastRpcStatus(const std::string& what, std::uint16_t channel);
  Status IoStatus(int status, const std::string& what);
  Status CheckUsable(std::uint16_t channel) const;
  void ChannelClosedByBroker(std::uint16_t channel, const std::string& why);
  void ConnectionLost(const std::string& why);
  // The broker sent a method where a delivery was expected.
  Status HandleUnexpectedFrame();

  std::unique_ptr<Conn> conn_;
  BrokerAddress address_;
  ConnectOptions options_;
  // Channels we opened; the value is empty while open, else why the broker closed it.
  std::map<std::uint16_t, std::string> channels_;
  std::string connection_error_;  // why the connection is gone
};

}  // namespace cw
