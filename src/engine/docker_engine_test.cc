// DockerEngine against a stand-in engine on 127.0.0.1 (tcp://): the answers
// a real engine gives only in trouble (a pull that fails inside a 200 stream,
// a container name already in use), which the integration tests cannot
// always provoke.
#include "engine/docker_engine.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "site/test_http_server.h"

namespace cw {
namespace {

using testing_http::Request;
using testing_http::Response;
using testing_http::Server;

std::string EngineUrl(const Server& server) {
  return "tcp://127.0.0.1:" + std::to_string(server.port());
}

Response Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.reason = status == 200 ? "OK" : "Error";
  r.headers = {{"Content-Type", "application/json"}};
  r.body = std::move(body);
  return r;
}

// What dockerd streams when a layer cannot be fetched after the pull began:
// the HTTP status is already 200 when the error comes.
TEST(DockerEngineTest, AnErrorLineFailsAPullAnsweredWith200) {
  Server server([](const Request& req) {
    if (req.method == "POST" && req.target.rfind("/images/create?", 0) == 0) {
      return Json(200,
                  "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n"
                  "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"a1b2\"}\r\n"
                  "{\"errorDetail\":{\"message\":\"unknown blob\"},\"error\":\"unknown blob\"}\r\n");
    }
    return Json(404, "{\"message\":\"not here\"}");
  });
  DockerEngine engine(EngineUrl(server));
  std::vector<std::string> statuses;
  Status st = engine.PullImage("busybox:latest",
                               [&](const PullProgress& p) { statuses.push_back(p.status); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_EQ(st.message(), "pulling image busybox:latest: unknown blob");
  EXPECT_EQ(statuses, (std::vector<std::string>{"Pulling from library/busybox", "Pulling fs layer"}));
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/images/create?fromImage=busybox&tag=latest");
}

TEST(DockerEngineTest, AnErrorWithoutDetailFailsAPullToo) {
  Server server([](const Request&) {
    return Json(200, "{\"status\":\"Pulling from x\"}\n{\"error\":\"toomanyrequests: rate limit\"}");
  });
  DockerEngine engine(EngineUrl(server));
  Status st = engine.PullImage("x:1", nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "pulling image x:1: toomanyrequests: rate limit");
}

TEST(DockerEngineTest, APullWithoutErrorLinesSucceeds) {
  Server server([](const Request&) {
    return Json(200, "{\"status\":\"Status: Image is up to date for x:1\"}\n");
  });
  DockerEngine engine(EngineUrl(server));
  EXPECT_TRUE(engine.PullImage("x:1", nullptr).ok());
}

TEST(DockerEngineTest, ANameInUseIsAlreadyExists) {
  Server server([](const Request& req) {
    EXPECT_EQ(req.target, "/containers/create?name=scoring_uPK-3_sID-7");
    return Json(409,
                "{\"message\":\"Conflict. The container name \\\"/scoring_uPK-3_sID-7\\\" is "
                "already in use by container \\\"abc\\\". You have to remove (or rename) that "
                "container to be able to reuse that name.\"}");
  });
  DockerEngine engine(EngineUrl(server));
  ContainerSpec spec;
  spec.name = "scoring_uPK-3_sID-7";
  spec.image = "busybox";
  Result<std::string> id = engine.Create(spec);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Code::kAlreadyExists) << id.status().ToString();
  EXPECT_NE(id.status().message().find("is already in use"), std::string::npos);
}

// Podman's answers where Docker's words differ (podman 4.3, seen).
TEST(DockerEngineTest, PodmansAnswersMeanWhatDockersDo) {
  Server server([](const Request& req) {
    if (req.target == "/containers/gone/kill") {
      return Json(500, "{\"cause\":\"container state improper\",\"message\":\"can only kill "
                       "running containers. gone is in state exited: container state "
                       "improper\",\"response\":500}");
    }
    if (req.target.rfind("/containers/badcmd/attach", 0) == 0) {
      return Json(409, "{\"message\":\"preparing container badcmd for attach: runc: runc create "
                       "failed: unable to start container process: exec: \\\"no-such-command\\\": "
                       "executable file not found in $PATH\"}");
    }
    if (req.method == "POST" && req.target.rfind("/images/create?fromSrc=-", 0) == 0) {
      return Json(200, "{\"stream\":\"Loaded image\"}\n{\"error\":\"no space left on device\"}");
    }
    return Json(404, "{\"message\":\"not here\"}");
  });
  DockerEngine engine(EngineUrl(server));
  // A container that already stopped: what a kill wanted.
  EXPECT_TRUE(engine.Kill("gone").ok());
  // A command not in the image, refused as podman attaches: the program's fault.
  Status st = engine.StartAndStream("badcmd", [](StreamKind, std::string_view) {}, [] {});
  EXPECT_EQ(st.code(), Code::kInvalidInput) << st.ToString();
  EXPECT_NE(st.message().find("the container's command cannot run"), std::string::npos);
  // An import that fails inside its 200 stream fails.
  Status imported = engine.ImportImage("localhost/x/y:1", "tar bytes");
  EXPECT_FALSE(imported.ok());
  EXPECT_NE(imported.message().find("no space left on device"), std::string::npos)
      << imported.ToString();
  bool saw_import = false;
  for (const Request& r : server.requests()) {
    if (r.target == "/images/create?fromSrc=-&repo=localhost%2Fx%2Fy%3A1") {
      saw_import = true;
      EXPECT_EQ(r.body, "tar bytes");
    }
  }
  EXPECT_TRUE(saw_import) << "the whole reference goes in repo (podman ignores tag)";
}

// GET /info as rootless Podman 4.3 on cgroups v1 answers it (cut down), as
// rootless Docker does, and as a rootful engine does.
TEST(DockerEngineTest, InfoSaysWhetherTheEngineIsRootlessAndWhatItCannotEnforce) {
  std::string answer;
  Server server([&answer](const Request& req) {
    if (req.target == "/info") return Json(200, answer);
    return Json(404, "{\"message\":\"not here\"}");
  });
  DockerEngine engine(EngineUrl(server));

  answer = R"({"ServerVersion":"4.3.1","NCPU":2,"CgroupVersion":"1","Rootless":true,
               "SecurityOptions":["name=seccomp,profile=default"]})";
  auto podman = engine.Info();
  ASSERT_TRUE(podman.ok()) << podman.status().ToString();
  EXPECT_TRUE(podman->rootless);
  EXPECT_EQ(podman->cgroup_version, "1");
  EXPECT_FALSE(StatsArePerContainer(*podman)) << "no cgroup of its own: the host's figures";
  const std::string note = UnenforcedLimits(*podman);
  for (const char* named : {"rootless", "cgroups v1", "CONTAINER_MEMORY", "CONTAINER_CPUS",
                            "CONTAINER_PIDS_LIMIT", "not enforced"}) {
    EXPECT_NE(note.find(named), std::string::npos) << named << " in: " << note;
  }

  // Rootless Docker on cgroups v2 enforces them (through systemd's delegation).
  answer = R"({"ServerVersion":"24.0.7","CgroupVersion":"2",
               "SecurityOptions":["name=seccomp,profile=builtin","name=rootless","name=cgroupns"]})";
  auto docker_v2 = engine.Info();
  ASSERT_TRUE(docker_v2.ok());
  EXPECT_TRUE(docker_v2->rootless);
  EXPECT_EQ(UnenforcedLimits(*docker_v2), "");
  EXPECT_TRUE(StatsArePerContainer(*docker_v2));
  answer = R"({"CgroupVersion":"1","SecurityOptions":["name=rootless"]})";
  EXPECT_NE(UnenforcedLimits(*engine.Info()), "");

  // Rootful, cgroups v1: every limit holds.
  answer = R"({"ServerVersion":"20.10.24","CgroupVersion":"1","Rootless":false,
               "SecurityOptions":["name=seccomp,profile=default"]})";
  auto rootful = engine.Info();
  ASSERT_TRUE(rootful.ok());
  EXPECT_FALSE(rootful->rootless);
  EXPECT_EQ(UnenforcedLimits(*rootful), "");
}

}  // namespace
}  // namespace cw
