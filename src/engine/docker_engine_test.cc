// DockerEngine's exit watch against a scripted engine on a unix socket: which
// of the "die" event and the wait call gives the exit code, and that neither
// one missing leaves Wait hanging. (tests/integration/engine_test.cc runs the
// real engine.)
#include "engine/docker_engine.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace cw {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

// What the scripted engine does with one request: answer and close, or keep
// the connection open (a stream, or a call that never answers).
enum class After { kClose, kHold };

class ScriptedEngine {
 public:
  // handler(fd, method, path) writes the answer, if any.
  using Handler = std::function<After(int fd, const std::string& method, const std::string& path)>;

  explicit ScriptedEngine(Handler handler) : handler_(std::move(handler)) {
    char dir[] = "/tmp/cw-scripted-engine-XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/docker.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listen_fd_, 16) != 0) {
      ADD_FAILURE() << "cannot listen on " << path_ << ": " << std::strerror(errno);
    }
    acceptor_ = std::thread([this] { Accept(); });
  }

  ~ScriptedEngine() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : held_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connections_) t.join();
    for (int fd : held_) close(fd);
    close(listen_fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  std::string url() const { return "unix://" + path_; }

  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

  static void Write(int fd, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  static void Answer(int fd, int status, const std::string& body) {
    Write(fd, "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n"
              "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  }
  // Headers of a body that lasts until the connection closes.
  static void BeginStream(int fd) {
    Write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
  }

 private:
  void Accept() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    std::string in;
    char buf[4096];
    size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        close(fd);
        return;
      }
      in.append(buf, static_cast<size_t>(n));
    }
    std::string line = in.substr(0, in.find("\r\n"));
    std::string method = line.substr(0, line.find(' '));
    std::string path = line.substr(method.size() + 1);
    path = path.substr(0, path.rfind(' '));
    {
      std::lock_guard lock(mu_);
      requests_.push_back(method + " " + path);
    }
    if (handler_(fd, method, path) == After::kHold) {
      std::lock_guard lock(mu_);
      held_.push_back(fd);
      return;
    }
    close(fd);
  }

  Handler handler_;
  std::string dir_, path_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // only the acceptor adds, before the join
  std::mutex mu_;
  std::vector<int> held_;
  std::vector<std::string> requests_;
};

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string DieEvent(const std::string& id, int code) {
  return nlohmann::json{{"status", "die"},
                        {"Type", "container"},
                        {"Action", "die"},
                        {"Actor", {{"ID", id}, {"Attributes", {{"exitCode", std::to_string(code)}}}}}}
             .dump() +
         "\n";
}

// The calls every run makes: attach (a stream that ends at once) and start.
After Common(int fd, const std::string& method, const std::string& path) {
  if (method == "POST" && StartsWith(path, "/containers/c1/attach")) {
    ScriptedEngine::BeginStream(fd);
    return After::kClose;
  }
  if (method == "POST" && path == "/containers/c1/start") {
    ScriptedEngine::Write(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    return After::kClose;
  }
  ScriptedEngine::Answer(fd, 404, R"({"message":"not scripted"})");
  return After::kClose;
}

Status StartC1(DockerEngine& engine) {
  return engine.StartAndStream("c1", [](StreamKind, std::string_view) {}, [] {});
}

TEST(DockerEngineExitTest, TheDieEventGivesTheExitCodeWhileTheWaitCallHasNotAnswered) {
  ScriptedEngine fake([](int fd, const std::string& method, const std::string& path) {
    if (StartsWith(path, "/events")) {
      ScriptedEngine::BeginStream(fd);
      ScriptedEngine::Write(fd, DieEvent("another", 9) + "{\"Action\":\"start\"}\n" + DieEvent("c1", 3));
      return After::kHold;
    }
    if (StartsWith(path, "/containers/c1/wait")) return After::kHold;  // the engine's teardown
    return Common(fd, method, path);
  });
  {
    DockerEngine engine(fake.url());
    ASSERT_TRUE(StartC1(engine).ok());
    Result<int> code = engine.Wait("c1", seconds(20));
    ASSERT_TRUE(code.ok()) << code.status().ToString();
    EXPECT_EQ(*code, 3);
  }
  // One events call, for this container's "die" only.
  std::string events;
  for (const auto& r : fake.requests()) {
    if (StartsWith(r, "GET /events")) events = r;
  }
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.find("%22container%22%3A%5B%22c1%22%5D"), std::string::npos) << events;
  EXPECT_NE(events.find("%22event%22%3A%5B%22die%22%5D"), std::string::npos) << events;
}

TEST(DockerEngineExitTest, TheWaitCallAnswersWhenNoDieEventComes) {
  ScriptedEngine fake([](int fd, const std::string& method, const std::string& path) {
    if (StartsWith(path, "/events")) {
      ScriptedEngine::BeginStream(fd);  // an engine that never sends "die"
      return After::kHold;
    }
    if (StartsWith(path, "/containers/c1/wait")) {
      ScriptedEngine::Answer(fd, 200, R"({"StatusCode":5})");
      return After::kClose;
    }
    return Common(fd, method, path);
  });
  DockerEngine engine(fake.url());
  ASSERT_TRUE(StartC1(engine).ok());
  Result<int> code = engine.Wait("c1", seconds(20));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 5);
}

TEST(DockerEngineExitTest, RefusedEventsLeaveTheWaitCall) {
  ScriptedEngine fake([](int fd, const std::string& method, const std::string& path) {
    if (StartsWith(path, "/events")) {
      ScriptedEngine::Answer(fd, 400, R"({"message":"invalid filter 'event'"})");
      return After::kClose;
    }
    if (StartsWith(path, "/containers/c1/wait")) {
      ScriptedEngine::Answer(fd, 200, R"({"StatusCode":6})");
      return After::kClose;
    }
    return Common(fd, method, path);
  });
  DockerEngine engine(fake.url());
  ASSERT_TRUE(StartC1(engine).ok());
  Result<int> code = engine.Wait("c1", seconds(20));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 6);
}

TEST(DockerEngineExitTest, WaitTimesOutWhileItRunsAndAnswersLater) {
  std::atomic<bool> exited{false};
  ScriptedEngine fake([&](int fd, const std::string& method, const std::string& path) {
    if (StartsWith(path, "/events")) {
      ScriptedEngine::BeginStream(fd);
      while (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ScriptedEngine::Write(fd, DieEvent("c1", 137));
      return After::kHold;
    }
    if (StartsWith(path, "/containers/c1/wait")) return After::kHold;
    return Common(fd, method, path);
  });
  DockerEngine engine(fake.url());
  ASSERT_TRUE(StartC1(engine).ok());
  Result<int> early = engine.Wait("c1", seconds(1));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code(), Code::kTimeout) << early.status().ToString();
  exited = true;
  Result<int> code = engine.Wait("c1", seconds(20));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 137);
}

TEST(DockerEngineExitTest, AFailedStartLeavesNoCallBehind) {
  ScriptedEngine fake([](int fd, const std::string& method, const std::string& path) {
    if (StartsWith(path, "/events")) {
      ScriptedEngine::BeginStream(fd);
      return After::kHold;
    }
    if (path == "/containers/c1/start") {
      ScriptedEngine::Answer(fd, 500, R"({"message":"OCI runtime create failed"})");
      return After::kClose;
    }
    return Common(fd, method, path);
  });
  auto t0 = Clock::now();
  {
    DockerEngine engine(fake.url());
    Status s = StartC1(engine);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("OCI runtime create failed"), std::string::npos) << s.ToString();
  }
  // The engine's destructor stopped the held events call (curl looks about once a second).
  EXPECT_LT(Clock::now() - t0, seconds(10));
  for (const auto& r : fake.requests()) EXPECT_FALSE(StartsWith(r, "POST /containers/c1/wait")) << r;
}

}  // namespace
}  // namespace cw
