#include "broker/consumer.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

namespace cw {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kTaskChannel = 1;
constexpr std::uint16_t kControlChannel = 2;
// The longest wait for a message before the loop's other chores (events,
// control channel retries). Acks do not wait for it: they wake the loop.
constexpr std::chrono::milliseconds kPoll{100};
constexpr std::chrono::seconds kEventInterval{2};  // Celery's heartbeat interval

// kombu's Mailbox("celery", type="fanout") and its per-node queue, with
// Celery's control_queue_ttl (300 s) and control_queue_expires (10 s): the
// same flags and argument types, or RabbitMQ refuses our declare.
const ExchangeSpec kPidboxExchange{"celery.pidbox", "fanout", /*durable=*/false,
                                   /*auto_delete=*/false};
// celery.events.event_exchange: kombu's Exchange defaults (durable).
const ExchangeSpec kEventExchange{"celeryev", "topic", /*durable=*/true, /*auto_delete=*/false};

void SleepUnless(const std::atomic<bool>& stop, std::chrono::milliseconds total) {
  auto until = Clock::now() + total;
  while (!stop && Clock::now() < until) {
    std::this_thread::sleep_for(std::min<Clock::duration>(kPoll, until - Clock::now()));
  }
}

MessageProperties JsonProperties(json headers) {
  MessageProperties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  props.headers = std::move(headers);
  props.delivery_mode = 1;  // transient, as kombu sends replies and events
  return props;
}

}  // namespace

QueueConsumer::QueueConsumer(BrokerAddress address, ConsumerOptions options, BrokerHandler& handler)
    : address_(std::move(address)),
      options_(std::move(options)),
      handler_(handler),
      prefetch_(options_.prefetch) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    spdlog::warn("no eventfd ({}): acks wait for the broker thread's next poll (up to {} ms)",
                 std::strerror(errno), kPoll.count());
  }
}

QueueConsumer::~QueueConsumer() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void QueueConsumer::Queue(PendingOp op) {
  op.queued = Clock::now();
  {
    MutexLock lock(mu_);
    pending_.push_back(op);
  }
  Wake();
}

void QueueConsumer::Wake() {
  if (wake_fd_ < 0) return;
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the thread wakes anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void QueueConsumer::DrainWake() {
  if (wake_fd_ < 0) return;
  std::uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
}

void QueueConsumer::Ack(std::uint64_t epoch, std::uint64_t delivery_tag) {
  Queue({true, epoch, delivery_tag, false, {}});
}

void QueueConsumer::Reject(std::uint64_t epoch, std::uint64_t delivery_tag, bool requeue) {
  Queue({false, epoch, delivery_tag, requeue, {}});
}

void QueueConsumer::StopConsuming() {
  stop_consuming_ = true;
  Wake();
}

void QueueConsumer::SetPrefetch(int prefetch) { prefetch_ = prefetch; }

void QueueConsumer::SetActiveCount(int active, int processed) {
  active_ = active;
  processed_ = processed;
}

void QueueConsumer::Run(const std::atomic<bool>& stop) {
  Backoff backoff(options_.reconnect_min, options_.reconnect_max);
  while (!stop) {
    AmqpClient client;
    Status ended = Session(client, stop, backoff);
    bool was_connected = connected_.exchange(false);
    if (stop) break;
    const std::string where = address_.Redacted();
    std::string detail = was_connected        ? "lost the connection to " + where
                         : client.connected() ? "cannot consume " + options_.queue + " on " + where
                                              : "cannot connect to " + where;
    detail += ": " + ended.message();
    handler_.OnConnectionState(false, detail);
    auto wait = backoff.Next();
    spdlog::warn("{}; retrying in {:.1f} s", detail, static_cast<double>(wait.count()) / 1000.0);
    SleepUnless(stop, wait);
  }
  connected_ = false;
  handler_.OnConnectionState(false, "stopped");
}

Status QueueConsumer::Session(AmqpClient& client, const std::atomic<bool>& stop, Backoff& backoff) {
  ConnectOptions connect = options_.connect;
  if (connect.connection_name.empty()) connect.connection_name = options_.nodename;
  CW_RETURN_IF_ERROR(client.Connect(address_, connect));
  CW_RETURN_IF_ERROR(SetUpTasks(client));

  events_ = options_.send_events;
  declared_reply_exchanges_.clear();
  Backoff control_backoff(std::chrono::seconds(1), std::chrono::seconds(60));
  auto control_retry_at = Clock::now();
  Status control = SetUpControl(client);
  if (!control.ok()) {
    if (!client.connected()) return control;
    spdlog::warn("remote control (revoke, ping) is off for now: {}", control.message());
    control_retry_at = Clock::now() + control_backoff.Next();
  }

  std::uint64_t epoch = ++epoch_;
  connected_ = true;
  backoff.Reset();
  std::string detail = "connected to " + address_.Redacted() + " as " + options_.nodename +
                       ", consuming " + options_.queue;
  spdlog::info("{}", detail);
  handler_.OnConnectionState(true, detail);
  SendEvent(client, "worker-online");
  auto next_event = Clock::now() + kEventInterval;

  while (!stop) {
    // Read the wake-up before taking the queue: an op queued after this
    // writes it again, so the wait below cannot sleep through it.
    DrainWake();
    CW_RETURN_IF_ERROR(ApplyPending(client, epoch));
    if (stop_consuming_ && !task_consumer_tag_.empty()) {
      CW_RETURN_IF_ERROR(CancelTaskConsumer(client));
    }
    if (!client.channel_open(kTaskChannel)) {
      return Unavailable("the task channel closed: " + client.channel_error(kTaskChannel));
    }
    auto now = Clock::now();
    if (!client.channel_open(kControlChannel) && now >= control_retry_at) {
      if (control.ok()) {  // it was working: say why it stopped
        spdlog::warn("remote control channel closed: {}", client.channel_error(kControlChannel));
      }
      control = SetUpControl(client);
      if (!client.connected()) return control;
      if (control.ok()) {
        control_backoff.Reset();
        spdlog::info("remote control is back");
      } else {
        auto wait = control_backoff.Next();
        spdlog::warn("remote control still off ({}); retrying in {} s", control.message(),
                     std::chrono::duration_cast<std::chrono::seconds>(wait).count());
        control_retry_at = now + wait;
      }
    }
    if (now >= next_event) {
      SendEvent(client, "worker-heartbeat");
      next_event = now + kEventInterval;
    }

    auto next = client.NextDelivery(kPoll, wake_fd_);
    if (!next.ok()) return next.status();
    if (!next->has_value()) continue;
    Delivery& delivery = **next;
    if (delivery.channel == kTaskChannel) {
      const std::uint64_t tag = delivery.delivery_tag;
      try {
        handler_.OnDelivery(epoch, std::move(delivery));
      } catch (const std::exception& e) {
        // A message must never take the broker thread down; nor loop.
        spdlog::error("rejecting delivery {}: the worker failed on it: {}", tag, e.what());
        Reject(epoch, tag, false);
      } catch (...) {
        spdlog::error("rejecting delivery {}: the worker failed on it", tag);
        Reject(epoch, tag, false);
      }
    } else {
      HandleControl(client, delivery);
    }
  }
  // Acks queued as the worker stopped (warm shutdown's last jobs) go out
  // before the connection closes.
  DrainWake();
  Status last = ApplyPending(client, epoch);
  if (!last.ok()) spdlog::warn("could not send the last acks: {}", last.message());
  SendEvent(client, "worker-offline");
  client.Close();
  return Status::Ok();
}

Status QueueConsumer::SetUpTasks(AmqpClient& client) {
  // As the Python worker's celery_config declares them; RabbitMQ refuses a
  // declare whose flags or arguments differ from the queue that exists.
  const std::string& name = options_.queue;
  CW_RETURN_IF_ERROR(client.DeclareExchange({name, "direct", true, false}, kTaskChannel));
  QueueSpec queue{name, /*durable=*/true, /*auto_delete=*/false, /*exclusive=*/false,
                  json{{"x-max-priority", 10}}};
  CW_RETURN_IF_ERROR(client.DeclareQueue(queue, kTaskChannel).status());
  CW_RETURN_IF_ERROR(client.Bind(name, name, name, kTaskChannel));
  applied_prefetch_ = prefetch_;
  CW_RETURN_IF_ERROR(client.Qos(applied_prefetch_, kTaskChannel));
  task_consumer_tag_.clear();
  if (stop_consuming_) {
    spdlog::info("shutting down: not consuming {} on this connection", name);
    return Status::Ok();
  }
  CW_ASSIGN_OR_RETURN(task_consumer_tag_, client.Consume(name, /*no_ack=*/false, kTaskChannel));
  return Status::Ok();
}

Status QueueConsumer::CancelTaskConsumer(AmqpClient& client) {
  std::string tag = std::move(task_consumer_tag_);
  task_consumer_tag_.clear();
  auto started = Clock::now();
  CW_RETURN_IF_ERROR(client.CancelConsumer(tag, kTaskChannel));
  spdlog::info("stopped consuming {} (basic.cancel, {:.1f} ms): other workers get its messages",
               options_.queue,
               std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  return Status::Ok();
}

Status QueueConsumer::SetUpControl(AmqpClient& client) {
  if (!client.channel_open(kControlChannel)) {
    CW_RETURN_IF_ERROR(client.OpenChannel(kControlChannel));
  }
  declared_reply_exchanges_.clear();
  const std::string queue_name = options_.nodename + ".celery.pidbox";
  CW_RETURN_IF_ERROR(client.DeclareExchange(kPidboxExchange, kControlChannel));
  QueueSpec queue{queue_name, /*durable=*/false, /*auto_delete=*/true, /*exclusive=*/false,
                  json{{"x-message-ttl", 300000}, {"x-expires", 10000}}};
  CW_ASSIGN_OR_RETURN(QueueState state, client.DeclareQueue(queue, kControlChannel));
  if (state.consumers > 0) {
    spdlog::warn(
        "another worker already listens as {}: give each worker its own node name, or "
        "revoke and ping reach only one of them",
        options_.nodename);
  }
  CW_RETURN_IF_ERROR(client.Bind(queue_name, kPidboxExchange.name, "", kControlChannel));
  CW_RETURN_IF_ERROR(client.Consume(queue_name, /*no_ack=*/true, kControlChannel).status());
  if (events_) {
    Status st = client.DeclareExchange(kEventExchange, kControlChannel);
    if (!st.ok()) {
      if (!client.connected()) return st;
      // Events are for monitoring only: go on without them rather than lose
      // remote control too.
      spdlog::warn("worker events are off for this connection: {}", st.message());
      events_ = false;
      return SetUpControl(client);
    }
  }
  return Status::Ok();
}

Status QueueConsumer::ApplyPending(AmqpClient& client, std::uint64_t epoch) {
  std::vector<PendingOp> ops;
  {
    MutexLock lock(mu_);
    ops.swap(pending_);
  }
  for (const PendingOp& op : ops) {
    const char* what = op.ack ? "ack" : "reject";
    if (op.epoch != epoch) {
      spdlog::debug(
          "dropping the {} of delivery {} from connection {} (now {}): the broker redelivers it",
          what, op.delivery_tag, op.epoch, epoch);
      continue;
    }
    Status st = op.ack ? client.Ack(op.delivery_tag, kTaskChannel)
                       : client.Reject(op.delivery_tag, op.requeue, kTaskChannel);
    // The rest of `ops` belongs to this connection too, which is now gone:
    // the broker redelivers all of them.
    if (!st.ok()) return st;
    spdlog::debug("{} of delivery {}{} sent {:.3f} ms after it was queued", what,
                  op.delivery_tag, op.ack || !op.requeue ? "" : " (requeue)",
                  std::chrono::duration<double, std::milli>(Clock::now() - op.queued).count());
  }
  int want = prefetch_;
  if (want != applied_prefetch_) {
    CW_RETURN_IF_ERROR(client.Qos(want, kTaskChannel));
    applied_prefetch_ = want;
    spdlog::debug("prefetch is now {}", want);
  }
  return Status::Ok();
}

void QueueConsumer::HandleControl(AmqpClient& client, const Delivery& delivery) {
  auto clock = delivery.props.headers.find("clock");
  // AMQP tables carry it as a signed integer.
  if (clock != delivery.props.headers.end() && clock->is_number_integer() &&
      clock->get<std::int64_t>() > 0) {
    AdjustClock(static_cast<std::uint64_t>(clock->get<std::int64_t>()));
  }
  auto message = ParseControlMessage(delivery.props, delivery.body);
  if (!message.ok()) {
    spdlog::warn("ignoring a remote control message: {}", message.status().message());
    return;
  }
  if (!IsForNode(*message, options_.nodename)) return;
  spdlog::debug("remote control: {} {}", message->method, message->arguments.dump());

  json reply;
  try {
    reply = handler_.OnControl(*message);
  } catch (const std::exception& e) {
    // As kombu does: the sender hears about the error instead of waiting.
    spdlog::error("remote control command {} failed: {}", message->method, e.what());
    reply = json{{"error", e.what()}};
  }
  if (message->reply_routing_key.empty() || reply.is_null()) return;
  Status st = Reply(client, *message, reply);
  if (!st.ok()) spdlog::warn("could not answer {}: {}", message->method, st.message());
}

Status QueueConsumer::Reply(AmqpClient& client, const ControlMessage& message, const json& reply) {
  const std::string& exchange = message.reply_exchange;
  // kombu declares the reply exchange before each reply; once per connection
  // is enough.
  if (!exchange.empty() && !declared_reply_exchanges_.count(exchange)) {
    CW_RETURN_IF_ERROR(client.DeclareExchange({exchange, "direct", false, false}, kControlChannel));
    declared_reply_exchanges_.insert(exchange);
  }
  MessageProperties props =
      JsonProperties(json{{"ticket", message.ticket}, {"clock", ForwardClock()}});
  return client.Publish(exchange, message.reply_routing_key,
                        ControlReplyBody(options_.nodename, reply), props, kControlChannel);
}

void QueueConsumer::SendEvent(AmqpClient& client, const std::string& type) {
  if (!events_ || !client.channel_open(kControlChannel)) return;
  std::string routing_key = type;
  std::replace(routing_key.begin(), routing_key.end(), '-', '.');
  std::string body = WorkerEventBody(type, options_.nodename, active_, processed_,
                                     std::chrono::duration<double>(kEventInterval).count());
  Status st =
      client.Publish(kEventExchange.name, routing_key, body,
                     JsonProperties(json{{"hostname", options_.nodename}}), kControlChannel);
  // A failed publish means the connection is gone; the next read says so.
  if (!st.ok()) spdlog::debug("could not send {}: {}", type, st.message());
}

}  // namespace cw
