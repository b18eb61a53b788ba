#include "broker/amqp_client.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>

#include "broker/amqp_table.h"

namespace cw {
namespace {

constexpr int kFrameMax = 131072;
// How long Close() waits for the broker's close-ok: closing must not hang a shutdown.
constexpr std::chrono::milliseconds kCloseTimeout{2000};

std::string ToString(amqp_bytes_t bytes) {
  if (bytes.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

amqp_bytes_t Bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string Seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

// Debian's bundle and its relatives: rabbitmq-c does not load OpenSSL's
// default paths by itself, so verification would fail without this.
std::string SystemCaBundle() {
  if (const char* env = std::getenv("SSL_CERT_FILE"); env != nullptr && *env != '\0') return env;
  for (const char* path : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                           "/etc/ssl/cert.pem"}) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return path;
  }
  return {};
}

Code CodeForReply(int reply_code) {
  switch (reply_code) {
    case AMQP_ACCESS_REFUSED:
      return Code::kPermissionDenied;
    case AMQP_NOT_FOUND:
      return Code::kNotFound;
    case AMQP_PRECONDITION_FAILED:
      return Code::kInvalidInput;  // declared with other settings: an admin must act
    default:
      return Code::kUnavailable;
  }
}

MessageProperties ToProperties(const amqp_basic_properties_t& p) {
  MessageProperties props;
  if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) props.content_type = ToString(p.content_type);
  if (p._flags & AMQP_BASIC_CONTENT_ENCODING_FLAG) {
    props.content_encoding = ToString(p.content_encoding);
  }
  if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) props.correlation_id = ToString(p.correlation_id);
  if (p._flags & AMQP_BASIC_REPLY_TO_FLAG) props.reply_to = ToString(p.reply_to);
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) props.headers = TableToJson(p.headers);
  if (p._flags & AMQP_BASIC_PRIORITY_FLAG) props.priority = p.priority;
  if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) props.delivery_mode = p.delivery_mode;
  return props;
}

}  // namespace

struct AmqpClient::Conn {
  amqp_connection_state_t state = nullptr;
  bool open = false;  // the socket is up and the protocol in a known state

  ~Conn() {
    if (state != nullptr) amqp_destroy_connection(state);
  }
};

AmqpClient::AmqpClient() = default;

AmqpClient::~AmqpClient() { Close(); }

bool AmqpClient::connected() const { return conn_ != nullptr && conn_->open; }

void AmqpClient::Close() {
  if (conn_ == nullptr) return;
  if (conn_->open) {
    timeval tv = ToTimeval(kCloseTimeout);
    amqp_set_rpc_timeout(conn_->state, &tv);
    amqp_connection_close(conn_->state, AMQP_REPLY_SUCCESS);
  }
  conn_.reset();
  channels_.clear();
  if (connection_error_.empty()) connection_error_ = "the connection was closed";
}

void AmqpClient::ConnectionLost(const std::string& why) {
  if (conn_ != nullptr) conn_->open = false;
  connection_error_ = why;
  for (auto& [channel, error] : channels_) {
    if (error.empty()) error = why;
  }
}

void AmqpClient::ChannelClosedByBroker(std::uint16_t channel, const std::string& why) {
  channels_[channel] = why.empty() ? "closed by the broker" : why;
}

bool AmqpClient::channel_open(std::uint16_t channel) const {
  auto it = channels_.find(channel);
  return connected() && it != channels_.end() && it->second.empty();
}

std::string AmqpClient::channel_error(std::uint16_t channel) const {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return "channel " + std::to_string(channel) + " is not open";
  return it->second;
}

Status AmqpClient::CheckUsable(std::uint16_t channel) const {
  if (!connected()) {
    return Unavailable(connection_error_.empty() ? "not connected to the broker"
                                                 : connection_error_);
  }
  if (!channel_open(channel)) {
    return Unavailable("channel " + std::to_string(channel) +
                       " is closed: " + channel_error(channel));
  }
  return Status::Ok();
}

Status AmqpClient::IoStatus(int status, const std::string& what) {
  if (status == AMQP_STATUS_OK) return Status::Ok();
  std::string why;
  switch (status) {
    case AMQP_STATUS_HEARTBEAT_TIMEOUT:
      why = "no heartbeat from the broker for " + std::to_string(2 * options_.heartbeat_s) +
            " s: the connection is dead";
      break;
    case AMQP_STATUS_CONNECTION_CLOSED:
    case AMQP_STATUS_SOCKET_CLOSED:
      why = "the broker closed the connection";
      break;
    case AMQP_STATUS_TIMEOUT:
      why = "no answer from the broker within " + Seconds(options_.rpc_timeout);
      break;
    default:
      why = amqp_error_string2(status);
  }
  ConnectionLost(what + ": " + why);
  return Unavailable(connection_error_);
}

Status AmqpClient::ReplyStatus(const amqp_rpc_reply_t& reply, const std::string& what,
                               std::uint16_t channel) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return Status::Ok();
    case AMQP_RESPONSE_NONE:
      return Internal(what + ": rabbitmq-c returned no reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      // A timed-out RPC leaves the protocol state unknown (its reply may
      // still come), so every library error ends the connection.
      return IoStatus(reply.library_error, what);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      break;
  }
  if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
    std::string text = ToString(close->reply_text);
    amqp_connection_close_ok_t ok{};
    amqp_send_method(conn_->state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    ConnectionLost(what + ": the broker closed the connection (" + text + ")");
    return Status(CodeForReply(close->reply_code), connection_error_);
  }
  if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
    std::string text = ToString(close->reply_text);
    int code = close->reply_code;
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_->state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    std::string why = what + ": " + text;
    if (code == AMQP_PRECONDITION_FAILED) {
      why = what + ": the broker already has it with other settings (" + text + ")";
    }
    ChannelClosedByBroker(channel, why);
    return Status(CodeForReply(code), why);
  }
  return Internal(what + ": unexpected answer from the broker (method " +
                  std::to_string(reply.reply.id) + ")");
}

Status AmqpClient::LastRpcStatus(const std::string& what, std::uint16_t channel) {
  return ReplyStatus(amqp_get_rpc_reply(conn_->state), what, channel);
}

Status AmqpClient::Connect(const BrokerAddress& address, const ConnectOptions& options) {
  Close();
  address_ = address;
  options_ = options;
  connection_error_.clear();
  conn_ = std::make_unique<Conn>();
  conn_->state = amqp_new_connection();
  if (conn_->state == nullptr) return Internal("rabbitmq-c could not allocate a connection");
  const std::string where = address.host + ":" + std::to_string(address.port);

  amqp_socket_t* socket =
      address.tls ? amqp_ssl_socket_new(conn_->state) : amqp_tcp_socket_new(conn_->state);
  if (socket == nullptr) return Internal("rabbitmq-c could not create a socket");
  if (address.tls) {
    amqp_ssl_socket_set_verify_peer(socket, options.tls_verify ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(socket, options.tls_verify ? 1 : 0);
    if (options.tls_verify) {
      std::string ca = options.ca_file.empty() ? SystemCaBundle() : options.ca_file;
      if (!ca.empty() && amqp_ssl_socket_set_cacert(socket, ca.c_str()) != AMQP_STATUS_OK) {
        return InvalidInput("cannot read the CA certificates in " + ca);
      }
    }
  }

  timeval connect_tv = ToTimeval(options.connect_timeout);
  int rc = amqp_socket_open_noblock(socket, address.host.c_str(), address.port, &connect_tv);
  if (rc != AMQP_STATUS_OK) {
    std::string why = amqp_error_string2(rc);
    // rabbitmq-c keeps the connect() error to itself; refused is by far the most common.
    if (rc == AMQP_STATUS_SOCKET_ERROR)
      why += " (connection refused? is a broker listening there?)";
    if (rc == AMQP_STATUS_TIMEOUT) why = "no answer within " + Seconds(options.connect_timeout);
    if (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED) {
      why +=
          " (the broker's certificate is not signed by a CA we trust: give the CA file, or "
          "turn TLS verification off if you trust the network)";
    } else if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED) {
      why += " (the broker's certificate is not for " + address.host + ")";
    }
    connection_error_ = "cannot reach the broker at " + where + ": " + why;
    return Unavailable(connection_error_);
  }
  conn_->open = true;

  timeval rpc_tv = ToTimeval(options.rpc_timeout);
  amqp_set_handshake_timeout(conn_->state, &rpc_tv);
  amqp_set_rpc_timeout(conn_->state, &rpc_tv);

  nlohmann::json client_properties = {
      // Without these RabbitMQ drops a refused login silently and never tells
      // us that a queue we consume from was deleted.
      {"capabilities", {{"authentication_failure_close", true}, {"consumer_cancel_notify", true}}},
  };
  if (!options.connection_name.empty()) {
    client_properties["connection_name"] = options.connection_name;
  }
  AmqpTable properties(client_properties);
  amqp_rpc_reply_t login = amqp_login_with_properties(
      conn_->state, address.vhost.c_str(), 0, kFrameMax, options.heartbeat_s, &properties.get(),
      AMQP_SASL_METHOD_PLAIN, address.user.c_str(), address.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    Status st = ReplyStatus(login, "logging in to " + where, 0);
    const std::string who = "user " + address.user + " on vhost " + address.vhost;
    std::string why;
    if (st.code() == Code::kPermissionDenied) {
      why = "the broker refused the login for " + who + " (wrong user name or password?)";
    } else if (st.message().find("NOT_ALLOWED") != std::string::npos) {
      why = "the broker does not let " + who +
            " in: the vhost does not exist or the user has no permissions on it";
    } else if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               (login.library_error == AMQP_STATUS_CONNECTION_CLOSED ||
                login.library_error == AMQP_STATUS_SOCKET_CLOSED)) {
      why = "the broker closed the connection during the login of " + who +
            " (wrong password, unknown vhost or not an AMQP port?)";
    } else if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               (login.library_error == AMQP_STATUS_BAD_AMQP_DATA ||
                login.library_error == AMQP_STATUS_INCOMPATIBLE_AMQP_VERSION)) {
      why = "what answers at " + where + " does not speak AMQP 0-9-1 (wrong port?)";
    }
    ConnectionLost(why.empty() ? st.message() : why + " [" + st.message() + "]");
    return Status(st.code() == Code::kOk ? Code::kUnavailable : st.code(), connection_error_);
  }
  return OpenChannel(kDefaultChannel);
}

Status AmqpClient::OpenChannel(std::uint16_t channel) {
  if (!connected()) return CheckUsable(channel);
  amqp_channel_open(conn_->state, channel);
  channels_[channel] = "";
  return LastRpcStatus("opening channel " + std::to_string(channel), channel);
}

Status AmqpClient::DeclareExchange(const ExchangeSpec& spec, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_exchange_declare(conn_->state, channel, Bytes(spec.name), Bytes(spec.type), 0,
                        spec.durable ? 1 : 0, spec.auto_delete ? 1 : 0, 0, amqp_empty_table);
  return LastRpcStatus("declaring exchange " + spec.name, channel);
}

Result<QueueState> AmqpClient::DeclareQueue(const QueueSpec& spec, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  AmqpTable arguments(spec.arguments);
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(conn_->state, channel, Bytes(spec.name), 0, spec.durable ? 1 : 0,
                         spec.exclusive ? 1 : 0, spec.auto_delete ? 1 : 0, arguments.get());
  CW_RETURN_IF_ERROR(LastRpcStatus("declaring queue " + spec.name, channel));
  return QueueState{ToString(ok->queue), ok->message_count, ok->consumer_count};
}

Result<QueueState> AmqpClient::InspectQueue(const std::string& name, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(conn_->state, channel, Bytes(name), 1, 0, 0, 0, amqp_empty_table);
  CW_RETURN_IF_ERROR(LastRpcStatus("looking up queue " + name, channel));
  return QueueState{ToString(ok->queue), ok->message_count, ok->consumer_count};
}

Status AmqpClient::DeleteQueue(const std::string& name, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_queue_delete(conn_->state, channel, Bytes(name), 0, 0);
  return LastRpcStatus("deleting queue " + name, channel);
}

Status AmqpClient::Bind(const std::string& queue, const std::string& exchange,
                        const std::string& routing_key, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_queue_bind(conn_->state, channel, Bytes(queue), Bytes(exchange), Bytes(routing_key),
                  amqp_empty_table);
  return LastRpcStatus("binding queue " + queue + " to exchange " + exchange, channel);
}

Status AmqpClient::Qos(int prefetch, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  if (prefetch < 0 || prefetch > 65535) {
    return InvalidInput("prefetch " + std::to_string(prefetch) + " is not in 0..65535");
  }
  // RabbitMQ applies a per-consumer (global=false) limit only to consumers
  // started after it, so a change would wait for the next connection; the
  // per-channel limit (global=true) applies at once. Celery does the same on
  // RabbitMQ (qos_semantics_matches_spec is false there).
  amqp_basic_qos(conn_->state, channel, 0, static_cast<uint16_t>(prefetch), 1);
  return LastRpcStatus("setting prefetch to " + std::to_string(prefetch), channel);
}

Result<std::string> AmqpClient::Consume(const std::string& queue, bool no_ack,
                                        std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_basic_consume_ok_t* ok =
      amqp_basic_consume(conn_->state, channel, Bytes(queue), amqp_empty_bytes, 0, no_ack ? 1 : 0,
                         0, amqp_empty_table);
  CW_RETURN_IF_ERROR(LastRpcStatus("consuming from queue " + queue, channel));
  return ToString(ok->consumer_tag);
}

Status AmqpClient::CancelConsumer(const std::string& consumer_tag, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_basic_cancel(conn_->state, channel, Bytes(consumer_tag));
  return LastRpcStatus("cancelling consumer " + consumer_tag, channel);
}

Status AmqpClient::Ack(std::uint64_t delivery_tag, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  return IoStatus(amqp_basic_ack(conn_->state, channel, delivery_tag, 0), "acknowledging");
}

Status AmqpClient::Reject(std::uint64_t delivery_tag, bool requeue, std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  return IoStatus(amqp_basic_reject(conn_->state, channel, delivery_tag, requeue ? 1 : 0),
                  "rejecting");
}

Status AmqpClient::Publish(const std::string& exchange, const std::string& routing_key,
                           std::string_view body, const MessageProperties& props,
                           std::uint16_t channel) {
  CW_RETURN_IF_ERROR(CheckUsable(channel));
  amqp_basic_properties_t p{};
  AmqpTable headers(props.headers);
  auto set = [&p](amqp_flags_t flag, amqp_bytes_t& field, const std::string& value) {
    if (value.empty()) return;
    p._flags |= flag;
    field = Bytes(value);
  };
  set(AMQP_BASIC_CONTENT_TYPE_FLAG, p.content_type, props.content_type);
  set(AMQP_BASIC_CONTENT_ENCODING_FLAG, p.content_encoding, props.content_encoding);
  set(AMQP_BASIC_CORRELATION_ID_FLAG, p.correlation_id, props.correlation_id);
  set(AMQP_BASIC_REPLY_TO_FLAG, p.reply_to, props.reply_to);
  if (props.headers.is_object() && !props.headers.empty()) {
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
    p.headers = headers.get();
  }
  if (props.priority > 0) {
    p._flags |= AMQP_BASIC_PRIORITY_FLAG;
    p.priority = static_cast<uint8_t>(props.priority);
  }
  if (props.delivery_mode > 0) {
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = static_cast<uint8_t>(props.delivery_mode);
  }
  amqp_bytes_t payload{body.size(), const_cast<char*>(body.data())};
  return IoStatus(amqp_basic_publish(conn_->state, channel, Bytes(exchange), Bytes(routing_key), 0,
                                     0, &p, payload),
                  "publishing to exchange " + exchange);
}

Status AmqpClient::HandleUnexpectedFrame() {
  amqp_frame_t frame{};
  timeval none{0, 0};
  int rc = amqp_simple_wait_frame_noblock(conn_->state, &frame, &none);
  if (rc == AMQP_STATUS_TIMEOUT) return Status::Ok();
  CW_RETURN_IF_ERROR(IoStatus(rc, "reading from the broker"));
  if (frame.frame_type != AMQP_FRAME_METHOD) return Status::Ok();
  switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
      auto* close = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
      std::string text = ToString(close->reply_text);
      amqp_channel_close_ok_t ok{};
      CW_RETURN_IF_ERROR(
          IoStatus(amqp_send_method(conn_->state, frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                   "answering channel.close"));
      ChannelClosedByBroker(frame.channel, "the broker closed the channel (" + text + ")");
      return Status::Ok();
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      auto* close = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
      std::string text = ToString(close->reply_text);
      amqp_connection_close_ok_t ok{};
      amqp_send_method(conn_->state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      ConnectionLost("the broker closed the connection (" + text + ")");
      return Unavailable(connection_error_);
    }
    case AMQP_BASIC_CANCEL_METHOD: {
      // The queue was deleted under us. Closing the channel makes the
      // caller set it up again, which declares the queue anew.
      auto* cancel = static_cast<amqp_basic_cancel_t*>(frame.payload.method.decoded);
      std::string tag = ToString(cancel->consumer_tag);
      std::uint16_t channel = frame.channel;
      amqp_channel_close(conn_->state, channel, AMQP_REPLY_SUCCESS);
      Status st = LastRpcStatus("closing channel " + std::to_string(channel), channel);
      if (!connected()) return st;
      ChannelClosedByBroker(channel,
                            "the broker cancelled consumer " + tag + " (was its queue deleted?)");
      return Status::Ok();
    }
    default:  // e.g. basic.ack for publisher confirms, which we do not ask for
      return Status::Ok();
  }
}

Result<std::optional<Delivery>> AmqpClient::NextDelivery(std::chrono::milliseconds timeout,
                                                         int wake_fd) {
  if (!connected()) {
    return Unavailable(connection_error_.empty() ? "not connected to the broker"
                                                 : connection_error_);
  }
  amqp_maybe_release_buffers(conn_->state);
  const int sock = amqp_get_sockfd(conn_->state);
  if (wake_fd >= 0 && sock >= 0 && !amqp_frames_enqueued(conn_->state) &&
      !amqp_data_in_buffer(conn_->state)) {
    // Nothing buffered: wait on the socket and the wake-up fd together.
    pollfd fds[2] = {{sock, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(timeout.count()));
    if (n > 0 && (fds[1].revents & POLLIN) && !(fds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
      return std::optional<Delivery>();  // woken: the caller has work to do
    }
    if (n < 0 && errno != EINTR) {
      return Unavailable(std::string("waiting for the broker: poll failed: ") +
                         std::strerror(errno));
    }
    // The socket has data, or the wait is over: let rabbitmq-c read it, send
    // a heartbeat that is due and notice a missed one (a 1 ms deadline, not
    // 0: with "now" it never checks the broker's heartbeats).
    timeout = std::chrono::milliseconds(1);
  }
  amqp_envelope_t envelope{};
  timeval tv = ToTimeval(timeout);
  amqp_rpc_reply_t reply = amqp_consume_message(conn_->state, &envelope, &tv, 0);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
    Delivery delivery;
    delivery.consumer_tag = ToString(envelope.consumer_tag);
    delivery.exchange = ToString(envelope.exchange);
    delivery.routing_key = ToString(envelope.routing_key);
    delivery.delivery_tag = envelope.delivery_tag;
    delivery.redelivered = envelope.redelivered != 0;
    delivery.channel = envelope.channel;
    delivery.props = ToProperties(envelope.message.properties);
    delivery.body = ToString(envelope.message.body);
    amqp_destroy_envelope(&envelope);
    return std::optional<Delivery>(std::move(delivery));
  }
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    if (reply.library_error == AMQP_STATUS_TIMEOUT) return std::optional<Delivery>();
    if (reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      CW_RETURN_IF_ERROR(HandleUnexpectedFrame());
      return std::optional<Delivery>();
    }
  }
  CW_RETURN_IF_ERROR(ReplyStatus(reply, "waiting for messages", 0));
  return std::optional<Delivery>();
}

}  // namespace cw
