#include "broker/celery.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace cw {
namespace {

using json = nlohmann::json;

// Properties and body exactly as Celery 5.2's app.send_task('compute_worker_run',
// args=(run_args,), queue='compute-worker', soft_time_limit=60, priority=0) sends them.
MessageProperties CeleryProps() {
  MessageProperties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  props.correlation_id = "d23fe669-387b-4449-89e5-ce84120b7f8b";
  props.reply_to = "4036db78-d42b-3c67-a81b-9f0fb57bd2e5";
  props.priority = 0;
  props.delivery_mode = 2;
  props.headers = json::parse(R"json({
    "lang": "py", "task": "compute_worker_run", "id": "d23fe669-387b-4449-89e5-ce84120b7f8b",
    "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null,
    "retries": 0, "timelimit": [null, 60], "root_id": "d23fe669-387b-4449-89e5-ce84120b7f8b",
    "parent_id": null, "argsrepr": "({'id': 5, 'secret': 'abc'},)", "kwargsrepr": "{}",
    "origin": "gen3047@vm", "ignore_result": false})json");
  return props;
}
const char* kCeleryBody =
    R"([[{"id": 5, "secret": "abc"}], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])";

TaskMessage MustParse(const MessageProperties& props, std::string_view body) {
  auto parsed = ParseTaskMessage(props, body);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : TaskMessage{};
}

std::string ErrorOf(const MessageProperties& props, std::string_view body) {
  auto parsed = ParseTaskMessage(props, body);
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), Code::kInvalidInput);
  return parsed.status().message();
}

TEST(TaskMessage, Protocol2FromCelery) {
  TaskMessage task = MustParse(CeleryProps(), kCeleryBody);
  EXPECT_EQ(task.protocol, 2);
  EXPECT_EQ(task.task, "compute_worker_run");
  EXPECT_EQ(task.id, "d23fe669-387b-4449-89e5-ce84120b7f8b");
  ASSERT_EQ(task.args.size(), 1u);
  EXPECT_EQ(task.args[0]["id"], 5);
  EXPECT_EQ(task.args[0]["secret"], "abc");
  EXPECT_EQ(task.kwargs, json::object());
  EXPECT_FALSE(task.hard_time_limit.has_value());
  EXPECT_EQ(task.soft_time_limit, 60.0);
}

TEST(TaskMessage, TimeLimits) {
  MessageProperties props = CeleryProps();
  props.headers["timelimit"] = {120.5, 60};
  TaskMessage task = MustParse(props, kCeleryBody);
  EXPECT_EQ(task.hard_time_limit, 120.5);
  EXPECT_EQ(task.soft_time_limit, 60.0);

  props.headers["timelimit"] = {nullptr, nullptr};
  task = MustParse(props, kCeleryBody);
  EXPECT_FALSE(task.hard_time_limit || task.soft_time_limit);

  props.headers["timelimit"] = {0, -1};  // Celery treats 0 as "no limit"
  task = MustParse(props, kCeleryBody);
  EXPECT_FALSE(task.hard_time_limit || task.soft_time_limit);

  props.headers.erase("timelimit");
  task = MustParse(props, kCeleryBody);
  EXPECT_FALSE(task.hard_time_limit || task.soft_time_limit);

  props.headers["timelimit"] = "60";
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("timelimit"), std::string::npos);
  props.headers["timelimit"] = {"a", 1};
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("timelimit"), std::string::npos);
}

TEST(TaskMessage, Protocol2BodyWithoutEmbed) {
  TaskMessage task = MustParse(CeleryProps(), R"([[1, 2], {"k": "v"}])");
  EXPECT_EQ(task.args, json({1, 2}));
  EXPECT_EQ(task.kwargs, json({{"k", "v"}}));
}

TEST(TaskMessage, Protocol2BadShapes) {
  EXPECT_NE(ErrorOf(CeleryProps(), R"({"a": 1})").find("[args, kwargs, embed]"), std::string::npos);
  EXPECT_NE(ErrorOf(CeleryProps(), R"([[1]])").find("[args, kwargs, embed]"), std::string::npos);
  EXPECT_NE(ErrorOf(CeleryProps(), R"([{"a": 1}, {}, {}])").find("args are not a list"),
            std::string::npos);
  EXPECT_NE(ErrorOf(CeleryProps(), R"([[], [], {}])").find("kwargs are not a mapping"),
            std::string::npos);
}

TEST(TaskMessage, MissingOrBadIdAndTask) {
  MessageProperties props = CeleryProps();
  props.headers.erase("id");
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("no id"), std::string::npos);
  props = CeleryProps();
  props.headers["id"] = "";
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("id"), std::string::npos);
  props = CeleryProps();
  props.headers["task"] = 42;
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("task"), std::string::npos);
}

TEST(TaskMessage, Protocol1) {
  MessageProperties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  const char* body = R"({"task": "compute_worker_run", "id": "t-1", "args": [{"id": 9}],
      "kwargs": {}, "retries": 0, "eta": null, "expires": null, "utc": true,
      "callbacks": null, "errbacks": null, "timelimit": [300, 240], "taskset": null,
      "chord": null})";
  TaskMessage task = MustParse(props, body);
  EXPECT_EQ(task.protocol, 1);
  EXPECT_EQ(task.task, "compute_worker_run");
  EXPECT_EQ(task.id, "t-1");
  EXPECT_EQ(task.args[0]["id"], 9);
  EXPECT_EQ(task.hard_time_limit, 300.0);
  EXPECT_EQ(task.soft_time_limit, 240.0);

  // Headers without a task name (kombu adds some of its own) still mean protocol 1.
  props.headers = {{"x-note", 1}};
  EXPECT_EQ(MustParse(props, R"({"task": "t", "id": "i"})").args, json::array());
  EXPECT_NE(ErrorOf(props, R"({"task": "t"})").find("no id"), std::string::npos);
  EXPECT_NE(ErrorOf(props, R"({"id": "i"})").find("no task"), std::string::npos);
}

TEST(TaskMessage, NotATaskAtAll) {
  MessageProperties props;
  props.content_type = "application/json";
  EXPECT_NE(ErrorOf(props, "[1, 2, 3]").find("not a Celery task message"), std::string::npos);
}

TEST(TaskMessage, OnlyJsonIsAccepted) {
  MessageProperties props = CeleryProps();
  props.content_type = "application/x-python-serialize";
  props.content_encoding = "binary";
  std::string error = ErrorOf(props, "\x80\x04\x95...");
  EXPECT_NE(error.find("unsupported content type application/x-python-serialize (pickle)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("the worker accepts application/json"), std::string::npos);
  props.content_type = "application/x-yaml";
  EXPECT_NE(ErrorOf(props, "a: 1").find("(yaml)"), std::string::npos);
  props.content_type = "application/x-msgpack";
  EXPECT_NE(ErrorOf(props, "\x93").find("(msgpack)"), std::string::npos);
  props.content_type = "text/plain";
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("text/plain"), std::string::npos);
}

TEST(TaskMessage, ContentTypeVariants) {
  MessageProperties props = CeleryProps();
  props.content_type = "Application/JSON; charset=utf-8";
  EXPECT_EQ(MustParse(props, kCeleryBody).task, "compute_worker_run");
  props.content_type = "";
  props.content_encoding = "";
  EXPECT_EQ(MustParse(props, kCeleryBody).task, "compute_worker_run");
  EXPECT_NE(ErrorOf(props, "not json").find("no content type and its body is not JSON"),
            std::string::npos);
  props.content_type = "application/json";
  props.content_encoding = "binary";
  EXPECT_EQ(MustParse(props, kCeleryBody).task, "compute_worker_run");
  props.content_encoding = "latin-1";
  EXPECT_NE(ErrorOf(props, kCeleryBody).find("unsupported content encoding latin-1"),
            std::string::npos);
}

TEST(TaskMessage, BadJson) {
  std::string error = ErrorOf(CeleryProps(), "[[{\"id\": 5}], {}");
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
}

TEST(TaskMessage, ABodyOverTheSizeLimitIsRefusedBeforeParsing) {
  // Valid JSON, only too big: the refusal must come from the size check.
  std::string big = R"([[{"id": 5, "pad": ")" + std::string(kMaxMessageBytes, 'x') +
                    R"("}], {}, {}])";
  EXPECT_NE(ErrorOf(CeleryProps(), big).find("over the worker's limit"), std::string::npos);
  // Just under the limit, the same shape parses.
  std::string fits = R"([[{"id": 5, "pad": ")" + std::string(kMaxMessageBytes - 64, 'x') +
                     R"("}], {}, {}])";
  EXPECT_EQ(MustParse(CeleryProps(), fits).args[0]["id"], 5);
}

TEST(TaskMessage, JsonNestedTooDeepIsRefused) {
  auto nested = [](int depth) {
    return std::string("[[{\"id\": 5, \"deep\": ") + std::string(depth, '[') +
           std::string(depth, ']') + "}], {}, {}]";
  };
  // The run_args object already sits two levels down.
  EXPECT_NE(ErrorOf(CeleryProps(), nested(100000)).find("levels deep"), std::string::npos);
  EXPECT_NE(ErrorOf(CeleryProps(), nested(kMaxJsonDepth)).find("levels deep"),
            std::string::npos);
  EXPECT_EQ(MustParse(CeleryProps(), nested(kMaxJsonDepth - 4)).args[0]["id"], 5);
}

TEST(TaskMessage, Base64Body) {
  MessageProperties props = CeleryProps();
  props.headers["body_encoding"] = "base64";
  // base64 of [[{"id": 5}], {}, {}]
  TaskMessage task = MustParse(props, "W1t7ImlkIjogNX1dLCB7fSwge31d");
  EXPECT_EQ(task.args[0]["id"], 5);
  EXPECT_NE(ErrorOf(props, "***").find("base64"), std::string::npos);
}

TEST(TaskMessage, CompressedIsRefused) {
  MessageProperties props = CeleryProps();
  props.headers["compression"] = "application/x-gzip";
  EXPECT_NE(ErrorOf(props, "xx").find("compressed"), std::string::npos);
}

MessageProperties ControlProps() {
  MessageProperties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  props.headers = {{"clock", 2}, {"expires", 1795852820.89}};
  return props;
}

TEST(ControlMessage, RevokeFromCelery) {
  auto message = ParseControlMessage(
      ControlProps(),
      R"({"method": "revoke", "arguments": {"task_id": "abc-123", "terminate": true,
          "signal": "SIGTERM"}, "destination": null, "pattern": null, "matcher": null})");
  ASSERT_TRUE(message.ok()) << message.status().ToString();
  EXPECT_EQ(message->method, "revoke");
  EXPECT_EQ(message->arguments["task_id"], "abc-123");
  EXPECT_EQ(message->arguments["terminate"], true);
  EXPECT_TRUE(message->destination.empty());
  EXPECT_TRUE(message->reply_routing_key.empty());  // a cast: no reply wanted
  EXPECT_TRUE(IsForNode(*message, "compute-worker@a"));
}

TEST(ControlMessage, PingWithReplyTo) {
  auto message = ParseControlMessage(
      ControlProps(),
      R"({"method": "ping", "arguments": {}, "destination": ["compute-worker@test-node"],
          "pattern": null, "matcher": null, "ticket": "34418032",
          "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "39344810"}})");
  ASSERT_TRUE(message.ok()) << message.status().ToString();
  EXPECT_EQ(message->ticket, "34418032");
  EXPECT_EQ(message->reply_exchange, "reply.celery.pidbox");
  EXPECT_EQ(message->reply_routing_key, "39344810");
  EXPECT_TRUE(IsForNode(*message, "compute-worker@test-node"));
  EXPECT_FALSE(IsForNode(*message, "compute-worker@other"));
}

TEST(ControlMessage, Malformed) {
  for (const char* body :
       {"[]", "{}", R"({"method": 3})", R"({"method": "x", "arguments": []})",
        R"({"method": "x", "destination": [1]})", R"({"method": "x", "destination": 5})",
        R"({"method": "x", "reply_to": "q"})", "{bad"}) {
    auto message = ParseControlMessage(ControlProps(), body);
    EXPECT_FALSE(message.ok()) << body;
  }
  MessageProperties pickle = ControlProps();
  pickle.content_type = "application/x-python-serialize";
  EXPECT_FALSE(ParseControlMessage(pickle, R"({"method": "ping"})").ok());
}

TEST(ControlMessage, NullArgumentsAndStringDestination) {
  auto message = ParseControlMessage(
      ControlProps(), R"({"method": "ping", "arguments": null, "destination": "n@h"})");
  ASSERT_TRUE(message.ok());
  EXPECT_EQ(message->arguments, json::object());
  EXPECT_EQ(message->destination, std::vector<std::string>{"n@h"});
}

TEST(ControlMessage, Matchers) {
  ControlMessage m;
  m.method = "ping";
  m.pattern = "compute-*";
  m.matcher = "glob";
  EXPECT_TRUE(IsForNode(m, "compute-worker@host"));
  EXPECT_FALSE(IsForNode(m, "celery@host"));
  m.pattern = "*@gpu[0-9]";
  EXPECT_TRUE(IsForNode(m, "compute-worker@gpu3"));
  EXPECT_FALSE(IsForNode(m, "compute-worker@gpux"));

  m.matcher = "pcre";
  m.pattern = "compute-worker@gpu\\d";  // re.match: anchored at the start only
  EXPECT_TRUE(IsForNode(m, "compute-worker@gpu1-extra"));
  EXPECT_FALSE(IsForNode(m, "x-compute-worker@gpu1"));
  m.pattern = "([";  // a bad regex matches nothing rather than throwing
  EXPECT_FALSE(IsForNode(m, "compute-worker@gpu1"));

  m.matcher = "shell";  // kombu raises MatcherNotInstalled: nobody answers
  m.pattern = "*";
  EXPECT_FALSE(IsForNode(m, "compute-worker@gpu1"));

  m.matcher = "";  // a pattern without a matcher is ignored, as kombu does
  EXPECT_TRUE(IsForNode(m, "anyone"));

  m.matcher = "glob";  // a destination wins over the pattern
  m.destination = {"a@b"};
  EXPECT_FALSE(IsForNode(m, "compute-worker@gpu1"));
  EXPECT_TRUE(IsForNode(m, "a@b"));
}

TEST(ControlReply, KombuShape) {
  EXPECT_EQ(json::parse(ControlReplyBody("compute-worker@h", {{"ok", "pong"}})),
            json::parse(R"({"compute-worker@h": {"ok": "pong"}})"));
  EXPECT_EQ(json::parse(ControlReplyBody("n", {{"ok", "tasks abc flagged as revoked"}}))["n"]["ok"],
            "tasks abc flagged as revoked");
}

TEST(WorkerEvent, CeleryFields) {
  json event = json::parse(WorkerEventBody("worker-heartbeat", "compute-worker@h", 1, 7, 2.0));
  for (const char* key : {"hostname", "utcoffset", "pid", "clock", "freq", "active", "processed",
                          "loadavg", "sw_ident", "sw_ver", "sw_sys", "timestamp", "type"}) {
    EXPECT_TRUE(event.contains(key)) << key;
  }
  EXPECT_EQ(event["type"], "worker-heartbeat");
  EXPECT_EQ(event["hostname"], "compute-worker@h");
  EXPECT_EQ(event["active"], 1);
  EXPECT_EQ(event["processed"], 7);
  EXPECT_EQ(event["freq"], 2.0);
  EXPECT_EQ(event["pid"], static_cast<int>(getpid()));
  EXPECT_EQ(event["sw_ident"], "codabench-worker");
  EXPECT_EQ(event["sw_sys"], "Linux");
  EXPECT_TRUE(event["utcoffset"].is_number_integer());
  EXPECT_TRUE(event["timestamp"].is_number_float());
  EXPECT_GT(event["timestamp"].get<double>(), 1.6e9);
  EXPECT_EQ(event["loadavg"].size(), 3u);
  json next = json::parse(WorkerEventBody("worker-heartbeat", "compute-worker@h", 0, 0, 2.0));
  EXPECT_GT(next["clock"].get<std::uint64_t>(), event["clock"].get<std::uint64_t>());
}

TEST(LamportClock, AdjustJumpsPastWhatItSaw) {
  std::uint64_t now = ForwardClock();
  AdjustClock(now + 100);
  EXPECT_EQ(ForwardClock(), now + 102);
  AdjustClock(1);  // an older clock does not move us back
  EXPECT_GT(ForwardClock(), now + 102);
}

}  // namespace
}  // namespace cw
