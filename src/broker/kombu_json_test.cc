#include "broker/kombu_json.h"

#include <gtest/gtest.h>

#include "broker/celery.h"

namespace cw {
namespace {

using json = nlohmann::json;

// The submission's secret, uuid.UUID("3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b").
constexpr const char* kDashed = "3f2b8c1e-5a4d-4e6f-9a7b-0c1d2e3f4a5b";
constexpr const char* kHex = "3f2b8c1e5a4d4e6f9a7b0c1d2e3f4a5b";

// The typed objects below are what each release's kombu/utils/json.py
// (JSONEncoder.default and the register_type calls at its end) writes:
//   5.3.0:        uuid -> {"hex": o.hex, "version": o.version}
//   5.3.1 to 5.6: uuid -> {"hex": o.hex}
//   all 5.3+:     datetime/date/time -> o.isoformat(), Decimal -> str(o),
//                 bytes -> "bytes" (UTF-8) or "base64"
json Typed(const std::string& type, json value) {
  return json{{"__type__", type}, {"__value__", std::move(value)}};
}

TEST(KombuJson, UuidAsEachReleaseWritesIt) {
  for (const json& value : {json{{"hex", kHex}, {"version", 4}},  // 5.3.0
                            json{{"hex", kHex}},                   // 5.3.1 .. 5.6
                            json(kHex)}) {                         // the bare hex
    json j = json{{"secret", Typed("uuid", value)}};
    ASSERT_TRUE(DecodeKombuTypes(j, "run_args").ok()) << value.dump();
    EXPECT_EQ(j["secret"], kDashed) << value.dump();
  }
}

TEST(KombuJson, UuidTextAsPythonParsesIt) {
  // uuid.UUID(hex=...) drops "urn:", "uuid:", braces and dashes; case does not matter.
  EXPECT_EQ(KombuUuidText(json{{"hex", kDashed}}), kDashed);
  EXPECT_EQ(KombuUuidText(json{{"hex", "{3F2B8C1E-5A4D-4E6F-9A7B-0C1D2E3F4A5B}"}}), kDashed);
  EXPECT_EQ(KombuUuidText(json{{"hex", std::string("urn:uuid:") + kDashed}}), kDashed);
  // A version rewrites the variant and version bits, as uuid.UUID(hex=, version=) does.
  EXPECT_EQ(KombuUuidText(json{{"hex", "00000000000000000000000000000000"}, {"version", 4}}),
            "00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(KombuUuidText(json{{"hex", "ffffffffffffffffffffffffffffffff"}, {"version", 1}}),
            "ffffffff-ffff-1fff-bfff-ffffffffffff");
  // What Python refuses.
  for (const json& bad : {json{{"hex", "3f2b"}}, json{{"hex", std::string(kHex) + "00"}},
                          json{{"hex", "zz2b8c1e5a4d4e6f9a7b0c1d2e3f4a5b"}},
                          json{{"hex", kHex}, {"version", 9}}, json{{"hex", kHex}, {"variant", 1}},
                          json{{"hex", 42}}, json::object(), json(17), json(nullptr)}) {
    EXPECT_FALSE(KombuUuidText(bad).has_value()) << bad.dump();
  }
}

TEST(KombuJson, OtherRegisteredTypes) {
  json j = {{"when", Typed("datetime", "2026-03-13T10:00:00.123456+00:00")},
            {"day", Typed("date", "2026-03-13")},
            {"at", Typed("time", "10:00:00")},
            {"limit", Typed("decimal", "600")},
            {"ratio", Typed("decimal", "0.25")},
            {"raw", Typed("bytes", "plain text")},
            {"packed", Typed("base64", "aGVsbG8=")}};
  ASSERT_TRUE(DecodeKombuTypes(j, "run_args").ok());
  EXPECT_EQ(j["when"], "2026-03-13T10:00:00.123456+00:00");
  EXPECT_EQ(j["day"], "2026-03-13");
  EXPECT_EQ(j["at"], "10:00:00");
  EXPECT_EQ(j["limit"], 600);
  EXPECT_TRUE(j["limit"].is_number_integer());
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), 0.25);
  EXPECT_EQ(j["raw"], "plain text");
  EXPECT_EQ(j["packed"], "hello");
}

TEST(KombuJson, NestedValuesInListsAndMappings) {
  json j = json::array({json{{"secrets", json::array({Typed("uuid", json{{"hex", kHex}})})},
                             {"inner", json{{"id", Typed("uuid", kHex)}}}}});
  ASSERT_TRUE(DecodeKombuTypes(j, "args").ok());
  EXPECT_EQ(j[0]["secrets"][0], kDashed);
  EXPECT_EQ(j[0]["inner"]["id"], kDashed);
}

TEST(KombuJson, OnlyExactTypedObjectsAreDecoded) {
  // kombu's object_hook wants exactly the two keys; anything else is data.
  json j = {{"a", {{"__type__", "uuid"}, {"__value__", kHex}, {"extra", 1}}},
            {"b", {{"__type__", "uuid"}}}};
  const json before = j;
  ASSERT_TRUE(DecodeKombuTypes(j, "run_args").ok());
  EXPECT_EQ(j, before);
}

TEST(KombuJson, UndecodableValuesAreNamedNeverShown) {
  const std::string secret_like = "not-a-uuid-but-secret-9f8e7d";
  json j = {{"secret", Typed("uuid", json{{"hex", secret_like}})},
            {"id", 5},
            {"when", Typed("datetime", "2026-03-13")}};
  Status st = DecodeKombuTypes(j, "run_args");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInvalidInput);
  EXPECT_NE(st.message().find("run_args['secret']"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not a UUID"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(secret_like), std::string::npos) << st.message();
  // The rest is still decoded; the bad value stays as it was sent.
  EXPECT_EQ(j["when"], "2026-03-13");
  EXPECT_TRUE(j["secret"].is_object());
}

TEST(KombuJson, UnknownTypesAndBadValues) {
  struct Case {
    json typed;
    std::string says;
  } cases[] = {
      {Typed("set", json::array({1, 2})), "does not know ('set')"},
      {json{{"__type__", 7}, {"__value__", 1}}, "type is not text"},
      {Typed("decimal", "NaN"), "not a finite number"},
      {Typed("decimal", "Infinity"), "not a finite number"},
      {Typed("decimal", 5), "not text"},
      {Typed("datetime", 1710324000), "not text"},
      {Typed("base64", "!!!"), "not base64"},
      {Typed("base64", "/w=="), "binary data"},  // b"\xff"
  };
  for (Case& c : cases) {
    json j = {{"x", c.typed}};
    Status st = DecodeKombuTypes(j, "run_args");
    ASSERT_FALSE(st.ok()) << c.typed.dump();
    EXPECT_NE(st.message().find(c.says), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("run_args['x']"), std::string::npos) << st.message();
  }
  // The first problem is the one reported; later ones do not replace it.
  json two = json::array({Typed("set", 1), Typed("frozenset", 2)});
  EXPECT_NE(DecodeKombuTypes(two, "args").message().find("args[0]"), std::string::npos);
}

TEST(KombuJson, Base64) {
  EXPECT_EQ(DecodeBase64("aGVsbG8gd29ybGQ="), "hello world");
  EXPECT_EQ(DecodeBase64("aGVsbG8gd29ybGQ"), "hello world");
  EXPECT_EQ(DecodeBase64("aGVs\nbG8="), "hello");
  EXPECT_EQ(DecodeBase64("-_8="), std::string("\xfb\xff", 2));
  EXPECT_FALSE(DecodeBase64("a*b").has_value());
}

// The body Codabench's site on Celery 5.6 (kombu 5.6) sends for
// app.send_task('compute_worker_run', args=(run_args,), ...): protocol 2,
// with the secret a typed uuid, as kombu.utils.json.dumps writes it.
TEST(KombuJson, TaskMessageFromCelery56) {
  MessageProperties props;
  props.content_type = "application/json";
  props.content_encoding = "utf-8";
  props.headers = {{"lang", "py"},          {"task", "compute_worker_run"},
                   {"id", "c0ffee00-1111-4222-8333-444455556666"},
                   {"timelimit", json::array({nullptr, 600})},
                   {"ignore_result", false}, {"replaced_task_nesting", 0},
                   {"stamped_headers", nullptr}, {"stamps", json::object()}};
  const std::string body =
      R"([[{"id": 41, "user_pk": 3, "secret": {"__type__": "uuid", "__value__": {"hex": ")" +
      std::string(kHex) +
      R"("}}, "docker_image": "x"}], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])";
  auto task = ParseTaskMessage(props, body);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_TRUE(task->undecodable.ok());
  EXPECT_EQ(task->args[0]["secret"], kDashed);
  EXPECT_EQ(task->args[0]["id"], 41);
}

TEST(KombuJson, TaskMessageWithAnUndecodableValueIsStillATask) {
  MessageProperties props;
  props.content_type = "application/json";
  props.headers = {{"task", "compute_worker_run"}, {"id", "t1"}};
  const std::string body = R"([[{"id": 41, "secret": {"__type__": "uuid", "__value__": {"hex": ")" +
                           std::string(kHex) +
                           R"("}}, "extra": {"__type__": "pickle", "__value__": "x"}}], {}, {}])";
  auto task = ParseTaskMessage(props, body);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  ASSERT_FALSE(task->undecodable.ok());
  EXPECT_NE(task->undecodable.message().find("args[0]['extra']"), std::string::npos)
      << task->undecodable.message();
  // Enough is decoded to tell the site.
  EXPECT_EQ(task->args[0]["secret"], kDashed);
}

}  // namespace
}  // namespace cw
