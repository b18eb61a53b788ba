// LiveSocket without a server. The exchanges with a websocket server are in
// tests/site (a small Python server).
#include "site/websocket.h"

#include <atomic>
#include <chrono>

#include <gtest/gtest.h>

#include "site/test_http_server.h"

namespace cw {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(LiveSocket, ANonWebsocketUrlTurnsItOff) {
  LiveSocket socket("https://example.org/x", "program");
  EXPECT_FALSE(socket.Send("hello"));
  EXPECT_TRUE(socket.stats().refused);
  socket.Close(milliseconds(1000));
}

TEST(LiveSocket, NobodyListeningMeansQueuedThenDroppedNeverBlocked) {
  int port;
  {
    testing_http::Server gone([](const testing_http::Request&) { return testing_http::Response{}; });
    port = gone.port();
  }
  LiveSocketOptions options;
  options.max_pending_bytes = 64 * 1024;
  options.first_backoff = milliseconds(10);
  options.max_backoff = milliseconds(40);
  LiveSocket socket("ws://127.0.0.1:" + std::to_string(port) + "/submission_input/1/2/s/?kind=program",
                    "program", options);
  const auto start = Clock::now();
  int queued = 0;
  for (int i = 0; i < 1000; ++i) queued += socket.Send(std::string(1024, 'x')) ? 1 : 0;
  EXPECT_LT(Clock::now() - start, milliseconds(200));
  EXPECT_EQ(queued, 64);
  EXPECT_EQ(socket.stats().bytes_dropped, 936u * 1024);
  const auto closing = Clock::now();
  socket.Close(milliseconds(200));
  EXPECT_LT(Clock::now() - closing, milliseconds(400));
  EXPECT_FALSE(socket.stats().connected);
  EXPECT_FALSE(socket.Send("late"));
}

TEST(LiveSocket, AnUnresolvableHostDoesNotHoldUpTheDestructor) {
  const auto start = Clock::now();
  {
    LiveSocket socket("wss://does-not-exist.invalid/submission_input/1/2/s/?kind=program", "program");
    socket.Send("x");
  }
  // A lookup can take seconds; the destructor must not wait for it.
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
}

TEST(LiveSocket, AServerThatIsNotAWebsocketIsRetried) {
  testing_http::Server plain([](const testing_http::Request&) {
    testing_http::Response r;
    r.status = 502;
    r.reason = "Bad Gateway";
    return r;
  });
  LiveSocketOptions options;
  options.first_backoff = milliseconds(10);
  options.max_backoff = milliseconds(20);
  std::atomic<int> failures{0};  // what the metrics count as site_errors_total{call="websocket"}
  options.on_failure = [&failures] { ++failures; };
  LiveSocket socket("ws://127.0.0.1:" + std::to_string(plain.port()) + "/submission_input/1/2/s/?kind=program",
                    "program", options);
  socket.Send("x");
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (plain.request_count() < 3 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_GE(plain.request_count(), 3u);
  EXPECT_GE(failures.load(), 2);
  EXPECT_FALSE(socket.stats().refused);
  auto requests = plain.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests[0].headers["host"], "127.0.0.1:" + std::to_string(plain.port()));
  EXPECT_EQ(requests[0].headers["upgrade"], "websocket");
  EXPECT_EQ(requests[0].target, "/submission_input/1/2/s/?kind=program");
  socket.Close(milliseconds(100));
}

TEST(LiveSocket, ARefusedHandshakeTurnsItOff) {
  testing_http::Server site([](const testing_http::Request&) {
    testing_http::Response r;
    r.status = 403;
    r.reason = "Forbidden";
    return r;
  });
  LiveSocketOptions options;
  options.first_backoff = milliseconds(10);
  std::atomic<int> failures{0};
  options.on_failure = [&failures] { ++failures; };
  LiveSocket socket("ws://127.0.0.1:" + std::to_string(site.port()) + "/submission_input/1/2/wrong/?kind=program",
                    "program", options);
  socket.Send("x");
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (!socket.stats().refused && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(socket.stats().refused);
  EXPECT_FALSE(socket.Send("y"));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(site.request_count(), 1u);
  socket.Close(milliseconds(100));
  EXPECT_EQ(failures.load(), 1);  // refused once; closing is not a failure
}

}  // namespace
}  // namespace cw
