#include "engine/docker_json.h"

#include <gtest/gtest.h>

#include <vector>

namespace cw {
namespace {

using nlohmann::json;

TEST(CreateBodyTest, MinimalSpecLeavesEngineDefaults) {
  ContainerSpec spec;
  spec.image = "python:3.11";
  spec.cmd = {"sh", "-c", "echo hi"};
  json body = BuildCreateBody(spec);
  EXPECT_EQ(body["Image"], "python:3.11");
  EXPECT_EQ(body["Cmd"], json({"sh", "-c", "echo hi"}));
  EXPECT_EQ(body["Tty"], false);
  EXPECT_EQ(body["OpenStdin"], false);
  EXPECT_EQ(body["AttachStdout"], true);
  EXPECT_EQ(body["AttachStderr"], true);
  for (const char* absent : {"WorkingDir", "Env", "Labels", "HostConfig"}) {
    EXPECT_FALSE(body.contains(absent)) << absent;
  }
}

TEST(CreateBodyTest, RuntimeOnlyWhenNamed) {
  ContainerSpec spec;
  spec.image = "img";
  spec.memory_bytes = 1 << 30;
  EXPECT_FALSE(BuildCreateBody(spec)["HostConfig"].contains("Runtime"));
  spec.runtime = "runsc";
  EXPECT_EQ(BuildCreateBody(spec)["HostConfig"]["Runtime"], "runsc");
}

TEST(RuntimeFromInfoTest, PathAndArgs) {
  EngineInfo::Runtime rt = RuntimeFromInfo(
      json::parse(R"({"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host", 3]})"));
  EXPECT_EQ(rt.path, "/usr/bin/runsc");
  EXPECT_EQ(rt.args, std::vector<std::string>{"--network=host"});
  EXPECT_EQ(RuntimeFromInfo(json::parse(R"({"path": "runc"})")).path, "runc");
  EXPECT_TRUE(RuntimeFromInfo(json("runc")).path.empty());
}

TEST(CreateBodyTest, FullSpec) {
  ContainerSpec spec;
  spec.image = "img";
  spec.working_dir = "/app/program";
  spec.env = {"A=1", "B=two words"};
  spec.labels = {{"codabench.job", "42"}, {"codabench.worker", "w1"}};
  spec.mounts = {{"/host/in", "/app/input", true}, {"/host/out", "/app/output", false}};
  spec.cap_drop = {"ALL"};
  spec.security_opt = {"no-new-privileges"};
  spec.network_disabled = true;
  spec.ipc_mode = "host";
  spec.shm_size_bytes = 1LL << 30;
  spec.memory_bytes = 8LL << 30;
  spec.nano_cpus = 2.5;
  spec.cpuset_cpus = "0-3";
  spec.log_driver = "none";
  spec.pids_limit = 4096;
  spec.nofile_limit = 65536;
  spec.cap_add = {"NET_ADMIN"};
  json body = BuildCreateBody(spec);
  EXPECT_EQ(body["HostConfig"]["LogConfig"], json({{"Type", "none"}}));

  EXPECT_EQ(body["WorkingDir"], "/app/program");
  EXPECT_EQ(body["Env"], json({"A=1", "B=two words"}));
  EXPECT_EQ(body["Labels"], json({{"codabench.job", "42"}, {"codabench.worker", "w1"}}));
  const json& host = body["HostConfig"];
  json mounts = json::parse(R"([
    {"Type": "bind", "Source": "/host/in", "Target": "/app/input", "ReadOnly": true},
    {"Type": "bind", "Source": "/host/out", "Target": "/app/output", "ReadOnly": false}])");
  EXPECT_EQ(host["Mounts"], mounts);
  EXPECT_EQ(host["CapDrop"], json({"ALL"}));
  EXPECT_EQ(host["CapAdd"], json({"NET_ADMIN"}));
  EXPECT_EQ(host["SecurityOpt"], json({"no-new-privileges"}));
  EXPECT_EQ(host["NetworkMode"], "none");
  EXPECT_EQ(host["IpcMode"], "host");
  EXPECT_EQ(host["ShmSize"], 1LL << 30);
  EXPECT_EQ(host["Memory"], 8LL << 30);
  EXPECT_EQ(host["MemorySwap"], 8LL << 30);  // no swap past the limit
  EXPECT_EQ(host["PidsLimit"], 4096);
  EXPECT_EQ(host["Ulimits"], json::parse(R"([{"Name": "nofile", "Soft": 65536, "Hard": 65536}])"));
  EXPECT_TRUE(host["NanoCpus"].is_number_integer());
  EXPECT_EQ(host["NanoCpus"], 2'500'000'000LL);
  EXPECT_EQ(host["CpusetCpus"], "0-3");
  EXPECT_FALSE(host.contains("DeviceRequests"));
}

TEST(InspectBodyTest, ReadsStateAndSize) {
  auto st = ParseInspectBody(R"({"Id": "x", "SizeRw": 12345,
      "State": {"Running": false, "ExitCode": 137, "OOMKilled": true, "Error": ""}})");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_FALSE(st->running);
  EXPECT_EQ(st->exit_code, 137);
  EXPECT_TRUE(st->oom_killed);
  EXPECT_EQ(st->writable_bytes, 12345);

  auto plain = ParseInspectBody(R"({"State": {"Running": true, "ExitCode": 0}})");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->running);
  EXPECT_FALSE(plain->oom_killed);
  EXPECT_EQ(plain->writable_bytes, -1);

  EXPECT_EQ(plain->device_requests, -1) << "no HostConfig: unknown";

  EXPECT_FALSE(ParseInspectBody("not json").ok());
  EXPECT_FALSE(ParseInspectBody(R"({"Id": "x"})").ok());
}

// What the engine kept of a container's GPU requests: Docker gives them
// back; Podman 4 answers null for those it dropped.
TEST(InspectBodyTest, ReadsTheDeviceRequestsTheEngineKept) {
  auto docker = ParseInspectBody(R"({"State": {"Running": false},
      "HostConfig": {"DeviceRequests": [{"Driver": "cdi", "DeviceIDs": ["nvidia.com/gpu=0"]}]}})");
  ASSERT_TRUE(docker.ok());
  EXPECT_EQ(docker->device_requests, 1);
  auto podman = ParseInspectBody(R"({"State": {"Running": false},
      "HostConfig": {"DeviceRequests": null, "Devices": []}})");
  ASSERT_TRUE(podman.ok());
  EXPECT_EQ(podman->device_requests, 0);
}

TEST(StatsBodyTest, ReadsMemoryAndCpu) {
  auto st = ParseStatsBody(R"({"memory_stats": {"usage": 1000, "max_usage": 5000},
      "cpu_stats": {"cpu_usage": {"total_usage": 2500000000}}})");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->memory_bytes, 1000);
  EXPECT_EQ(st->memory_peak_bytes, 5000);
  EXPECT_DOUBLE_EQ(st->cpu_seconds, 2.5);
  // A stopped container's answer: empty objects, nothing known.
  auto empty = ParseStatsBody(R"({"memory_stats": {}, "cpu_stats": {"cpu_usage": {}}})");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->memory_bytes, -1);
  EXPECT_EQ(empty->cpu_seconds, -1);
  EXPECT_FALSE(ParseStatsBody("[]").ok());
}

TEST(CreateBodyTest, NvidiaDeviceRequestWithUuids) {
  ContainerSpec spec;
  spec.image = "img";
  spec.device_requests = {{"nvidia", {"GPU-aaaa", "GPU-bbbb"}, {{"gpu"}}, 0}};
  json req = BuildCreateBody(spec)["HostConfig"]["DeviceRequests"];
  EXPECT_EQ(req, json::parse(R"([{"Driver": "nvidia", "DeviceIDs": ["GPU-aaaa", "GPU-bbbb"],
                                  "Capabilities": [["gpu"]]}])"));
}

TEST(CreateBodyTest, NvidiaDeviceRequestForAllGpus) {
  ContainerSpec spec;
  spec.image = "img";
  spec.device_requests = {{"nvidia", {}, {{"gpu"}}, -1}};
  json req = BuildCreateBody(spec)["HostConfig"]["DeviceRequests"];
  EXPECT_EQ(req, json::parse(R"([{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}])"));
}

TEST(CreateBodyTest, CdiDeviceRequest) {
  ContainerSpec spec;
  spec.image = "img";
  spec.device_requests = {{"cdi", {"nvidia.com/gpu=all"}, {}, 0}};
  json req = BuildCreateBody(spec)["HostConfig"]["DeviceRequests"];
  EXPECT_EQ(req, json::parse(R"([{"Driver": "cdi", "DeviceIDs": ["nvidia.com/gpu=all"]}])"));
}

TEST(EngineErrorTest, MessageFromJsonBody) {
  EXPECT_EQ(EngineErrorMessage(R"({"message":"No such image: x:1"})"), "No such image: x:1");
  EXPECT_EQ(EngineErrorMessage("  plain text\n"), "plain text");
  EXPECT_EQ(EngineErrorMessage(""), "(no message)");
  EXPECT_LT(EngineErrorMessage(std::string(10000, 'x')).size(), 600u);
}

TEST(EngineErrorTest, CodesFollowHttpStatus) {
  Status s = EngineHttpError(404, R"({"message":"No such container: abc"})", "inspecting abc");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "inspecting abc: No such container: abc");
  EXPECT_EQ(EngineHttpError(400, "{}", "x").code(), Code::kInvalidInput);
  EXPECT_EQ(EngineHttpError(403, "{}", "x").code(), Code::kPermissionDenied);
  EXPECT_EQ(EngineHttpError(503, "{}", "x").code(), Code::kUnavailable);
  Status internal = EngineHttpError(500, R"({"message":"boom"})", "x");
  EXPECT_EQ(internal.code(), Code::kInternal);
  EXPECT_EQ(internal.message(), "x: boom (HTTP 500)");
}

TEST(PullErrorTest, NotThereIsNotFound) {
  for (const char* m : {"manifest for foo:1 not found: manifest unknown: manifest unknown",
                        "pull access denied for foo, repository does not exist or may require "
                        "'docker login': denied: requested access to the resource is denied",
                        "repository does not exist"}) {
    Status s = PullError("foo:1", m);
    EXPECT_EQ(s.code(), Code::kNotFound) << m;
    EXPECT_NE(s.message().find(m), std::string::npos);
    EXPECT_NE(s.message().find("foo:1"), std::string::npos);
  }
  EXPECT_EQ(PullError("x", "Get \"https://localhost:1/v2/\": dial tcp: connection refused").code(),
            Code::kUnavailable);
}

struct PullLog {
  std::vector<PullProgress> seen;
  PullProgressFn Fn() {
    return [this](const PullProgress& p) { seen.push_back(p); };
  }
};

const char kPullStream[] =
    "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1024,\"total\":4096},"
    "\"progress\":\"[=>   ]\",\"id\":\"a1b2c3\"}\r\n"
    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"a1b2c3\"}\r\n"
    "{\"status\":\"Status: Downloaded newer image for busybox:latest\"}\r\n";

TEST(PullStreamTest, ParsesProgressSplitAnywhere) {
  std::string_view all(kPullStream);
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    PullLog log;
    PullStreamParser p(log.Fn());
    p.Feed(all.substr(0, cut));
    p.Feed(all.substr(cut));
    p.Finish();
    ASSERT_EQ(log.seen.size(), 4u) << "cut at " << cut;
    EXPECT_EQ(log.seen[0].layer_id, "latest");
    EXPECT_EQ(log.seen[1].status, "Downloading");
    EXPECT_EQ(log.seen[1].layer_id, "a1b2c3");
    EXPECT_EQ(log.seen[1].current, 1024);
    EXPECT_EQ(log.seen[1].total, 4096);
    EXPECT_EQ(log.seen[2].status, "Pull complete");
    EXPECT_EQ(log.seen[2].total, 0);
    EXPECT_TRUE(p.error().empty());
  }
}

TEST(PullStreamTest, ByteByByte) {
  PullLog log;
  PullStreamParser p(log.Fn());
  for (const char* c = kPullStream; *c; ++c) p.Feed(std::string_view(c, 1));
  p.Finish();
  EXPECT_EQ(log.seen.size(), 4u);
}

TEST(PullStreamTest, LastLineWithoutNewline) {
  PullLog log;
  PullStreamParser p(log.Fn());
  p.Feed("{\"status\":\"a\"}\n{\"status\":\"b\"}");
  EXPECT_EQ(log.seen.size(), 1u);
  p.Finish();
  ASSERT_EQ(log.seen.size(), 2u);
  EXPECT_EQ(log.seen[1].status, "b");
}

TEST(PullStreamTest, ErrorObjectMeansFailure) {
  PullLog log;
  PullStreamParser p(log.Fn());
  p.Feed(
      "{\"status\":\"Pulling from x\"}\n"
      "{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\n"
      "{\"errorDetail\":{\"message\":\"second\"},\"error\":\"second\"}\n");
  p.Finish();
  EXPECT_EQ(p.error(), "manifest unknown");  // the first one is the cause
  EXPECT_EQ(log.seen.size(), 1u);
}

TEST(PullStreamTest, ErrorDetailAlone) {
  PullStreamParser p(nullptr);
  p.Feed("{\"errorDetail\":{\"message\":\"toomanyrequests\"}}\n");
  EXPECT_EQ(p.error(), "toomanyrequests");
}

// The Python worker's test, `line.get("error")`: any error line fails the
// pull, whatever its form and wherever the chunks cut it.
TEST(PullStreamTest, AnErrorKeyAloneIsAFailureInAnyForm) {
  const std::string line = "{\"error\":\"toomanyrequests: You have reached your pull rate limit\"}";
  for (size_t cut = 1; cut < line.size(); cut += 7) {
    PullLog log;
    PullStreamParser p(log.Fn());
    p.Feed("{\"status\":\"Pulling from x\",\"id\":\"1\"}\n" + line.substr(0, cut));
    EXPECT_TRUE(p.error().empty());
    p.Feed(line.substr(cut));  // the last line, without a newline
    p.Finish();
    EXPECT_EQ(p.error(), "toomanyrequests: You have reached your pull rate limit") << cut;
    EXPECT_EQ(log.seen.size(), 1u);
  }
  PullStreamParser object(nullptr);
  object.Feed("{\"error\":{\"code\":500}}\n");
  EXPECT_EQ(object.error(), "{\"code\":500}");
  // Unset, as Python's truthiness has it: not an error.
  PullStreamParser unset(nullptr);
  unset.Feed("{\"error\":null}\n{\"error\":\"\"}\n{\"error\":false}\n{\"error\":{}}\n");
  EXPECT_TRUE(unset.error().empty());
}

TEST(PullStreamTest, IgnoresNoiseAndDropsRunawayLines) {
  PullLog log;
  PullStreamParser p(log.Fn());
  p.Feed("not json\n\n[1,2]\n");
  p.Feed("{\"status\":\"" + std::string(3 << 20, 'x'));  // no end in sight
  p.Feed("\"}\n{\"status\":\"after\"}\n");
  p.Finish();
  ASSERT_EQ(log.seen.size(), 1u);
  EXPECT_EQ(log.seen[0].status, "after");
  EXPECT_TRUE(p.error().empty());
}

TEST(CreateBodyTest, NetworkModeEntrypointAndOpenStdin) {
  ContainerSpec spec;
  spec.image = "img";
  spec.network_mode = "container:abc";
  spec.entrypoint = {"sh", "-c", "read _"};
  spec.open_stdin = true;
  json body = BuildCreateBody(spec);
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "container:abc");
  EXPECT_EQ(body["Entrypoint"], json({"sh", "-c", "read _"}));
  EXPECT_EQ(body["OpenStdin"], true);
  EXPECT_EQ(body["StdinOnce"], false);
  EXPECT_EQ(body["AttachStdin"], false);
  // A competition that turned the network off keeps it off.
  spec.network_disabled = true;
  EXPECT_EQ(BuildCreateBody(spec)["HostConfig"]["NetworkMode"], "none");
}

TEST(LayersSizeTest, DockersFigureOrEachImageOnceWherePodmanSaysZero) {
  EXPECT_EQ(*ParseLayersSize(R"({"LayersSize": 1234, "Images": [{"Id": "a", "Size": 9}]})"),
            1234);
  // Podman 4.3: 0, and its images (one entry per tag).
  EXPECT_EQ(*ParseLayersSize(R"({"LayersSize": 0, "Images": [
      {"Id": "sha256:a", "Size": 2000, "RepoTags": ["localhost/x:1"]},
      {"Id": "sha256:a", "Size": 2000, "RepoTags": ["registry.invalid/x:1"]},
      {"Id": "sha256:b", "Size": 500}, {"Size": 7}, "junk"]})"),
            2500);
  EXPECT_EQ(*ParseLayersSize(R"({"LayersSize": 0, "Images": []})"), 0) << "an empty store";
  EXPECT_EQ(*ParseLayersSize(R"({"LayersSize": 0})"), 0);
  EXPECT_FALSE(ParseLayersSize(R"({"Images": []})").ok());
  EXPECT_FALSE(ParseLayersSize("not json").ok());
}

}  // namespace
}  // namespace cw
