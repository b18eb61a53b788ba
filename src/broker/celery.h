// The Celery wire formats the worker speaks: task messages (protocol 2, and
// 1 from old senders), remote-control ("pidbox") commands and their replies,
// and worker events for Flower. Pure parsing and formatting, no I/O.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_parse.h"
#include "common/status.h"

namespace cw {

// The AMQP basic properties Celery uses. Header values are AMQP table values
// turned into JSON.
struct MessageProperties {
  std::string content_type, content_encoding, correlation_id, reply_to;
  nlohmann::json headers = nlohmann::json::object();
  int priority = 0;
  int delivery_mode = 0;  // 1 transient, 2 persistent; 0 leaves it unset when publishing
};

struct TaskMessage {
  std::string id, task;
  nlohmann::json args = nlohmann::json::array();
  nlohmann::json kwargs = nlohmann::json::object();
  // Seconds; absent when the sender gave none (null, 0 or negative).
  std::optional<double> hard_time_limit, soft_time_limit;
  int protocol = 2;
  // kombu 5.3+ typed values in args and kwargs are decoded (broker/kombu_json.h).
  // One that could not be is left as sent and named here: the task is still
  // readable enough to tell the site why it will not run.
  Status undecodable = Status::Ok();
};

// Limits on what a message may make the worker parse: a body over
// kMaxMessageBytes, or JSON nested deeper than kMaxJsonDepth, is refused
// before (or while) parsing, so a hostile message costs neither memory nor
// stack.
inline constexpr std::size_t kMaxMessageBytes = 16u << 20;  // 16 MiB

// JSON only: a pickle, YAML or msgpack message is InvalidInput (never
// unpickled), as are bad JSON, a body over the limits above, and a missing id
// or task name, each with the reason, so the worker can reject the message
// and log why. kombu's typed values are decoded as kombu's loader does (see
// TaskMessage::undecodable). Never throws.
Result<TaskMessage> ParseTaskMessage(const MessageProperties& props, std::string_view body);

// A remote-control command broadcast on celery.pidbox (kombu's Mailbox).
struct ControlMessage {
  std::string method;
  nlohmann::json arguments = nlohmann::json::object();
  std::vector<std::string> destination;  // empty: every node
  std::string pattern, matcher;          // "glob" or "pcre"; used when destination is empty
  // Where the reply goes; an empty routing key means the sender wants none
  // (kombu's routing key is the sender's oid, never empty).
  std::string reply_exchange, reply_routing_key;
  std::string ticket;  // echoed in the reply's headers so the sender can match it
};

Result<ControlMessage> ParseControlMessage(const MessageProperties& props, std::string_view body);

// As kombu's Node.handle_message decides: a destination list wins; else a
// pattern with a matcher (glob as fnmatch, pcre as re.match); else everyone.
// An unknown matcher matches nothing (kombu raises, so no reply is sent).
bool IsForNode(const ControlMessage& message, const std::string& nodename);

// {"<nodename>": reply}, as kombu's Mailbox._publish_reply sends it.
std::string ControlReplyBody(const std::string& nodename, const nlohmann::json& reply);

// A worker event ("worker-online", "worker-heartbeat", "worker-offline") with
// the fields Celery's own workers send, so Flower and `celery events` list us.
std::string WorkerEventBody(const std::string& type, const std::string& hostname, int active,
                            int processed, double freq_s);

// Celery's Lamport clock, one per process: the "clock" of events and replies.
std::uint64_t ForwardClock();
void AdjustClock(std::uint64_t seen);

}  // namespace cw
