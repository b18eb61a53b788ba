#include "worker/status_socket.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

class StatusSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cw_status_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  static metrics::HttpHandler Answer(nlohmann::json j) {
    return [j] { return metrics::HttpResponse{200, "application/json", j.dump()}; };
  }
  // A socket file with nobody listening: what a SIGKILLed worker leaves.
  static void LeaveStaleSocket(const fs::path& path) {
    fs::create_directories(path.parent_path());
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(fd);  // the file stays
  }
  fs::path base_;
};

TEST_F(StatusSocketTest, OnePathPerNodeName) {
  EXPECT_EQ(StatusSocketPath("/b", "compute-worker@gpu1"),
            fs::path("/b/status/compute-worker@gpu1.sock"));
  EXPECT_NE(StatusSocketPath("/b", "w@a"), StatusSocketPath("/b", "w@b"));
  EXPECT_EQ(StatusSocketPath("/b", "../x/y"), fs::path("/b/status/.._x_y.sock"));
}

TEST_F(StatusSocketTest, AnswersStatusOnlyToItsUserAndGoesAwayAtTheEnd) {
  const fs::path path = StatusSocketPath(base_, "w@host");
  {
    auto socket = StatusSocket::Open(path, Answer({{"node", "w@host"}}));
    ASSERT_TRUE(socket.ok()) << socket.status().message();
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(stat(path.parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    auto answer = FetchStatus({path.string(), ""});
    ASSERT_TRUE(answer.ok()) << answer.status().message();
    EXPECT_EQ((*answer)["node"], "w@host");
  }
  EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
}

TEST_F(StatusSocketTest, AStaleSocketIsReplaced) {
  const fs::path path = StatusSocketPath(base_, "w@host");
  LeaveStaleSocket(path);
  auto before = FetchStatus({path.string(), ""});
  ASSERT_FALSE(before.ok());
  EXPECT_THAT(before.status().message(), HasSubstr("is left from a worker that stopped"));
  auto socket = StatusSocket::Open(path, Answer({{"node", "new"}}));
  ASSERT_TRUE(socket.ok()) << socket.status().message();
  auto answer = FetchStatus({path.string(), ""});
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_EQ((*answer)["node"], "new");
}

TEST_F(StatusSocketTest, ALiveWorkersSocketIsNotTaken) {
  const fs::path path = StatusSocketPath(base_, "w@host");
  auto first = StatusSocket::Open(path, Answer({{"node", "first"}}));
  ASSERT_TRUE(first.ok());
  auto second = StatusSocket::Open(path, Answer({{"node", "second"}}));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("another live worker"));
  auto answer = FetchStatus({path.string(), ""});
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ((*answer)["node"], "first");
}

TEST_F(StatusSocketTest, AFileInTheWayIsLeftAlone) {
  const fs::path path = StatusSocketPath(base_, "w@host");
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "mine";
  auto socket = StatusSocket::Open(path, Answer({}));
  ASSERT_FALSE(socket.ok());
  EXPECT_THAT(socket.status().message(), HasSubstr("is not a socket"));
  EXPECT_TRUE(fs::is_regular_file(path));
}

TEST_F(StatusSocketTest, NoWorkerIsAClearError) {
  auto missing = FetchStatus({(base_ / "status" / "nobody.sock").string(), ""});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kUnavailable);
  EXPECT_THAT(missing.status().message(), HasSubstr("no worker is running here"));
  // A port nothing listens on (bound, never listening).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto refused = FetchStatus({"", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port))});
  close(fd);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("no worker answers at 127.0.0.1:"));
}

TEST_F(StatusSocketTest, AServerThatNeverAnswersTimesOut) {
  // Listening, but nobody accepts: the read timeout ends the wait.
  const fs::path path = base_ / "silent.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  StatusClientOptions options;
  options.read_timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto answer = FetchStatus({path.string(), ""}, options);
  auto took = std::chrono::steady_clock::now() - start;
  close(fd);
  ASSERT_FALSE(answer.ok());
  EXPECT_THAT(answer.status().message(), HasSubstr("did not answer within"));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST_F(StatusSocketTest, ThroughTheMetricsServerToo) {
  metrics::HttpServer server({{"/status", Answer({{"node", "tcp"}})}});
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  auto answer = FetchStatus({"", "127.0.0.1:" + std::to_string(server.port())});
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_EQ((*answer)["node"], "tcp");
  metrics::HttpServer old_worker({{"/metrics", Answer({})}});
  ASSERT_TRUE(old_worker.Start("127.0.0.1:0").ok());
  auto none = FetchStatus({"", "127.0.0.1:" + std::to_string(old_worker.port())});
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("has no /status"));
}

}  // namespace
}  // namespace cw
