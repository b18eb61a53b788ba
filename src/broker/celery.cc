#include "broker/celery.h"

#include "broker/kombu_json.h"
#include "common/json_parse.h"

#include <fnmatch.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <regex>

#ifndef CW_VERSION  // set by the build
#define CW_VERSION "dev"
#endif

namespace cw {
namespace {

using json = nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Names for the serializers kombu can send, so the log says what the sender used.
std::string SerializerName(const std::string& content_type) {
  if (content_type == "application/x-python-serialize") return " (pickle)";
  if (content_type == "application/x-yaml") return " (yaml)";
  if (content_type == "application/x-msgpack") return " (msgpack)";
  return "";
}

// Checks the serializer and encoding, then parses the body as JSON.
Result<json> DecodeBody(const MessageProperties& props, std::string_view body) {
  std::string type =
      Lower(Trim(std::string_view(props.content_type).substr(0, props.content_type.find(';'))));
  if (!type.empty() && type != "application/json") {
    return InvalidInput("unsupported content type " + props.content_type + SerializerName(type) +
                        "; the worker accepts application/json");
  }
  std::string encoding = Lower(Trim(props.content_encoding));
  if (!encoding.empty() && encoding != "utf-8" && encoding != "utf8" && encoding != "binary") {
    return InvalidInput("unsupported content encoding " + props.content_encoding +
                        "; the worker accepts utf-8");
  }
  if (body.size() > kMaxMessageBytes) {
    return InvalidInput("the message body is " + std::to_string(body.size()) +
                        " bytes, over the worker's limit of " +
                        std::to_string(kMaxMessageBytes) + " bytes");
  }
  std::string decoded;
  if (props.headers.is_object()) {
    auto compression = props.headers.find("compression");
    if (compression != props.headers.end() && !compression->is_null()) {
      return InvalidInput("compressed messages (" + compression->dump() +
                          ") are not supported; send them uncompressed");
    }
    // kombu base64-encodes bodies for transports that cannot carry bytes.
    auto body_encoding = props.headers.find("body_encoding");
    if (body_encoding != props.headers.end() && *body_encoding == "base64") {
      auto plain = DecodeBase64(body);
      if (!plain) return InvalidInput("the body is marked base64 but is not valid base64");
      decoded = std::move(*plain);
      body = decoded;
    }
  }
  auto parsed = ParseJsonBounded(body, "the message body");
  if (!parsed.ok() && type.empty()) {
    return InvalidInput("the message has no content type and its body is not JSON (" +
                        parsed.status().message() + ")");
  }
  return parsed;
}

Result<std::string> RequiredString(const json& object, const char* key, const char* where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return InvalidInput(std::string("the task message has no ") + key + " in its " + where);
  }
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return InvalidInput(std::string("the task ") + key + " in the " + where +
                        " is not a non-empty string (got " + std::string(it->type_name()) + ")");
  }
  return it->get<std::string>();
}

// Celery's timelimit is [hard, soft], each seconds or null.
Status ReadTimeLimits(const json& object, TaskMessage& task) {
  auto it = object.find("timelimit");
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_array() || it->size() > 2) {
    return InvalidInput(std::string("the task's timelimit is not [hard, soft] (got ") + it->type_name() + ")");
  }
  std::optional<double>* slots[] = {&task.hard_time_limit, &task.soft_time_limit};
  for (size_t i = 0; i < it->size(); ++i) {
    const json& limit = (*it)[i];
    if (limit.is_null()) continue;
    if (!limit.is_number()) {
      return InvalidInput(std::string("the task's timelimit is not [hard, soft] in seconds"));
    }
    double seconds = limit.get<double>();
    if (seconds > 0) *slots[i] = seconds;
  }
  return Status::Ok();
}

Status ReadArgs(const json& args, const json& kwargs, TaskMessage& task) {
  if (!args.is_null()) {
    if (!args.is_array()) return InvalidInput(std::string("the task's args are not a list (got ") + args.type_name() + ")");
    task.args = args;
  }
  if (!kwargs.is_null()) {
    if (!kwargs.is_object()) {
      return InvalidInput(std::string("the task's kwargs are not a mapping (got ") + kwargs.type_name() + ")");
    }
    task.kwargs = kwargs;
  }
  return Status::Ok();
}

Result<TaskMessage> ParseProtocol2(const json& headers, const json& body) {
  TaskMessage task;
  task.protocol = 2;
  CW_ASSIGN_OR_RETURN(task.task, RequiredString(headers, "task", "headers"));
  CW_ASSIGN_OR_RETURN(task.id, RequiredString(headers, "id", "headers"));
  CW_RETURN_IF_ERROR(ReadTimeLimits(headers, task));
  if (!body.is_array() || body.size() < 2) {
    return InvalidInput("the body of a protocol 2 task message is not [args, kwargs, embed]");
  }
  CW_RETURN_IF_ERROR(ReadArgs(body[0], body[1], task));
  return task;
}

Result<TaskMessage> ParseProtocol1(const json& body) {
  TaskMessage task;
  task.protocol = 1;
  CW_ASSIGN_OR_RETURN(task.task, RequiredString(body, "task", "body"));
  CW_ASSIGN_OR_RETURN(task.id, RequiredString(body, "id", "body"));
  CW_RETURN_IF_ERROR(ReadTimeLimits(body, task));
  CW_RETURN_IF_ERROR(ReadArgs(body.value("args", json()), body.value("kwargs", json()), task));
  return task;
}

Result<std::string> OptionalString(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return InvalidInput(std::string("the control message's ") + key +
                        " is not a string (got " + std::string(it->type_name()) + ")");
  }
  return it->get<std::string>();
}

std::atomic<std::uint64_t> g_clock{0};

}  // namespace

Result<TaskMessage> ParseTaskMessage(const MessageProperties& props, std::string_view body) {
  CW_ASSIGN_OR_RETURN(json parsed, DecodeBody(props, body));
  Result<TaskMessage> task = InvalidInput(
      "not a Celery task message: no task name in its headers and its body is not a protocol 1 "
      "mapping");
  if (props.headers.is_object() && props.headers.contains("task")) {
    task = ParseProtocol2(props.headers, parsed);
  } else if (parsed.is_object()) {
    task = ParseProtocol1(parsed);
  }
  if (task.ok()) {
    // kombu's loader decodes the whole body; only args and kwargs reach us.
    task->undecodable = DecodeKombuTypes(task->args, "the task's args");
    Status in_kwargs = DecodeKombuTypes(task->kwargs, "the task's kwargs");
    if (task->undecodable.ok()) task->undecodable = in_kwargs;
  }
  return task;
}

Result<ControlMessage> ParseControlMessage(const MessageProperties& props, std::string_view body) {
  CW_ASSIGN_OR_RETURN(json parsed, DecodeBody(props, body));
  if (!parsed.is_object()) return InvalidInput("the control message is not a JSON object");
  ControlMessage message;
  CW_ASSIGN_OR_RETURN(message.method, OptionalString(parsed, "method"));
  if (message.method.empty()) return InvalidInput("the control message has no method");

  auto arguments = parsed.find("arguments");
  if (arguments != parsed.end() && !arguments->is_null()) {
    if (!arguments->is_object()) {
      return InvalidInput(std::string("the control message's arguments are not a mapping (got ") +
                          arguments->type_name() + ")");
    }
    message.arguments = *arguments;
  }

  auto destination = parsed.find("destination");
  if (destination != parsed.end() && !destination->is_null()) {
    if (destination->is_string()) {
      message.destination.push_back(destination->get<std::string>());
    } else if (destination->is_array()) {
      for (const json& node : *destination) {
        if (!node.is_string()) {
          return InvalidInput("the control message's destination is not a list of node names");
        }
        message.destination.push_back(node.get<std::string>());
      }
    } else {
      return InvalidInput("the control message's destination is not a list of node names");
    }
  }
  CW_ASSIGN_OR_RETURN(message.pattern, OptionalString(parsed, "pattern"));
  CW_ASSIGN_OR_RETURN(message.matcher, OptionalString(parsed, "matcher"));
  CW_ASSIGN_OR_RETURN(message.ticket, OptionalString(parsed, "ticket"));

  auto reply_to = parsed.find("reply_to");
  if (reply_to != parsed.end() && !reply_to->is_null()) {
    if (!reply_to->is_object()) {
      return InvalidInput("the control message's reply_to is not {exchange, routing_key}");
    }
    CW_ASSIGN_OR_RETURN(message.reply_exchange, OptionalString(*reply_to, "exchange"));
    CW_ASSIGN_OR_RETURN(message.reply_routing_key, OptionalString(*reply_to, "routing_key"));
  }
  return message;
}

bool IsForNode(const ControlMessage& message, const std::string& nodename) {
  if (!message.destination.empty()) {
    return std::find(message.destination.begin(), message.destination.end(), nodename) !=
           message.destination.end();
  }
  if (message.pattern.empty() || message.matcher.empty()) return true;
  if (message.matcher == "glob") {
    // Python's fnmatch has no escapes and lets '*' cross '/'.
    return fnmatch(message.pattern.c_str(), nodename.c_str(), FNM_NOESCAPE) == 0;
  }
  if (message.matcher == "pcre") {
    try {
      // re.match: anchored at the start only.
      return std::regex_search(nodename, std::regex(message.pattern),
                               std::regex_constants::match_continuous);
    } catch (const std::regex_error&) {
      return false;
    }
  }
  return false;
}

std::string ControlReplyBody(const std::string& nodename, const nlohmann::json& reply) {
  return json{{nodename, reply}}.dump();
}

std::string WorkerEventBody(const std::string& type, const std::string& hostname, int active,
                            int processed, double freq_s) {
  timeval now{};
  gettimeofday(&now, nullptr);
  time_t seconds = now.tv_sec;
  tm local{};
  localtime_r(&seconds, &local);
  // Celery sends time.timezone // 3600: hours west of UTC, floored.
  long west = -local.tm_gmtoff;
  long utcoffset = west >= 0 ? west / 3600 : -((-west + 3599) / 3600);

  double loads[3] = {0, 0, 0};
  json loadavg = json::array();
  if (getloadavg(loads, 3) == 3) {
    for (double load : loads) loadavg.push_back(std::round(load * 100) / 100);
  }
  json event = {
      {"hostname", hostname},
      {"utcoffset", utcoffset},
      {"pid", static_cast<int>(getpid())},
      {"clock", ForwardClock()},
      {"freq", freq_s},
      {"active", active},
      {"processed", processed},
      {"loadavg", loadavg},
      {"sw_ident", "codabench-worker"},
      {"sw_ver", CW_VERSION},
      {"sw_sys", "Linux"},
      {"timestamp", static_cast<double>(now.tv_sec) + now.tv_usec / 1e6},
      {"type", type},
  };
  return event.dump();
}

std::uint64_t ForwardClock() { return ++g_clock; }

void AdjustClock(std::uint64_t seen) {
  std::uint64_t current = g_clock.load();
  while (!g_clock.compare_exchange_weak(current, std::max(current, seen) + 1)) {
  }
}

}  // namespace cw
