// LiveSocket against a real websocket server (fake_site.py): what arrives,
// and that the sender never waits whatever the server does.
#include "site/websocket.h"

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_site.h"

namespace cw {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing_site::FakeSite;
using testing_site::JoinedMessages;
using testing_site::Records;

const char kSecret[] = "2c9d5a10-7e7e-4f4f-8b8b-a1b2c3d4e5f6";

std::string SocketUrl(const FakeSite& site, const std::string& secret, const std::string& kind) {
  return "ws://127.0.0.1:" + std::to_string(site.port()) + "/submission_input/7/42/" + secret + "/?kind=" + kind;
}

LiveSocketOptions Quick() {
  LiveSocketOptions o;
  o.first_backoff = milliseconds(100);
  o.max_backoff = milliseconds(400);
  return o;
}

long ResidentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(LiveSocketWithSite, SendsJsonTextFramesWithTheUrlsHostHeader) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  LiveSocket socket(SocketUrl(site, kSecret, "program"), "program", Quick());
  std::string sent;
  for (int i = 0; i < 200; ++i) {
    std::string line = "step " + std::to_string(i) + " loss=0." + std::to_string(1000 - i) + "\n";
    EXPECT_TRUE(socket.Send(line));
    sent += line;
  }
  EXPECT_TRUE(socket.SendMessage(R"({"kind": "detailed_result_update"})"));
  socket.Close(milliseconds(3000));

  Records records = site.Read();
  auto connects = site.Events("connect", "program");
  ASSERT_EQ(connects.size(), 1u);
  EXPECT_EQ(connects[0]["host"], "127.0.0.1:" + std::to_string(site.port()));
  EXPECT_TRUE(connects[0]["secret_ok"].get<bool>());
  EXPECT_EQ(JoinedMessages(records, "program"), sent);
  auto messages = site.Events("message", "program");
  ASSERT_GE(messages.size(), 2u);
  EXPECT_LT(messages.size(), 50u) << "small chunks should be coalesced";
  for (auto& m : messages) {
    auto j = nlohmann::json::parse(m["data"].get<std::string>());
    ASSERT_TRUE(j.is_object());
    EXPECT_TRUE(j["kind"] == "program" || j["kind"] == "detailed_result_update") << j.dump();
  }
  EXPECT_EQ(nlohmann::json::parse(messages.back()["data"].get<std::string>()),
            (nlohmann::json{{"kind", "detailed_result_update"}}));
  EXPECT_TRUE(site.Events("binary").empty());
  // A proper close: the server saw the socket end.
  EXPECT_EQ(site.Events("disconnect", "program").size(), 1u);
  EXPECT_EQ(socket.stats().bytes_dropped, 0u);
}

TEST(LiveSocketWithSite, ServerDownAtStartThenUp) {
  FakeSite site(kSecret);
  LiveSocket socket(SocketUrl(site, kSecret, "ingestion"), "ingestion", Quick());
  EXPECT_TRUE(socket.Send("before the site was up\n"));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(socket.stats().connected);
  ASSERT_TRUE(site.Start());
  EXPECT_TRUE(site.WaitFor([](const Records& r) { return JoinedMessages(r, "ingestion").size() > 0; }))
      << site.ServerLog();
  EXPECT_TRUE(socket.Send("after\n"));
  EXPECT_TRUE(site.WaitFor([](const Records& r) {
    return JoinedMessages(r, "ingestion").find("after\n") != std::string::npos;
  }));
  EXPECT_EQ(JoinedMessages(site.Read(), "ingestion"), "before the site was up\nafter\n");
  EXPECT_TRUE(socket.stats().connected);
  socket.Close(milliseconds(2000));
}

TEST(LiveSocketWithSite, ServerKilledMidStreamNeverBlocksTheSender) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  LiveSocket socket(SocketUrl(site, kSecret, "program"), "program", Quick());
  socket.Send("first\n");
  ASSERT_TRUE(site.WaitFor([](const Records& r) { return JoinedMessages(r, "program") == "first\n"; }));

  site.Kill();
  const std::string chunk(4096, 'o');
  constexpr int kChunks = 20 * 1024 * 1024 / 4096;  // 20 MiB
  const long rss_before = ResidentKiB();
  const auto start = Clock::now();
  for (int i = 0; i < kChunks; ++i) socket.Send(chunk);
  const auto took = Clock::now() - start;
  const long rss_growth = ResidentKiB() - rss_before;
  std::printf("20 MiB burst: %.1f ms, resident memory +%ld KiB, %llu bytes dropped\n",
              std::chrono::duration<double, std::milli>(took).count(), rss_growth,
              static_cast<unsigned long long>(socket.stats().bytes_dropped));
  // Blocking would mean waiting on a dead socket: seconds per call. The
  // bound is loose for sanitized builds on a busy machine.
  EXPECT_LT(took, milliseconds(5000));
#ifndef __SANITIZE_ADDRESS__  // AddressSanitizer keeps freed memory in quarantine
  EXPECT_LT(rss_growth, 8 * 1024);
#endif
  EXPECT_GE(socket.stats().bytes_dropped, 19ull * 1024 * 1024);

  // The site comes back: the socket reconnects and says what was lost.
  ASSERT_TRUE(site.Start());
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!socket.stats().connected && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
  ASSERT_TRUE(socket.stats().connected);
  EXPECT_TRUE(site.WaitFor([](const Records& r) {
    return JoinedMessages(r, "program").find(std::string(4096, 'o')) != std::string::npos;
  }));
  socket.Send("back\n");
  EXPECT_TRUE(site.WaitFor([](const Records& r) {
    std::string text = JoinedMessages(r, "program");
    return text.size() >= 5 && text.compare(text.size() - 5, 5, "back\n") == 0;
  }));
  std::string text = JoinedMessages(site.Read(), "program");
  EXPECT_NE(text.find("bytes of output were not shown live; the full log is in storage]\n"), std::string::npos);
  const auto closing = Clock::now();
  socket.Close(milliseconds(3000));
  EXPECT_LT(Clock::now() - closing, milliseconds(3100));
}

TEST(LiveSocketWithSite, ASecretMismatchIsRefusedAndTurnsTheSocketOff) {
  FakeSite site(kSecret);
  ASSERT_TRUE(site.Start());
  LiveSocket socket(SocketUrl(site, "not-the-secret", "program"), "program", Quick());
  socket.Send("hello\n");
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!socket.stats().refused && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(socket.stats().refused);
  const auto start = Clock::now();
  EXPECT_FALSE(socket.Send("more\n"));
  socket.Close(milliseconds(2000));
  EXPECT_LT(Clock::now() - start, milliseconds(100));
  EXPECT_EQ(site.Events("connect").size(), 1u);
  EXPECT_TRUE(site.Events("message").empty());
}

TEST(LiveSocketWithSite, ASiteThatClosesRightAfterAcceptingIsRetriedQuietly) {
  FakeSite site(kSecret, "accept-close");
  ASSERT_TRUE(site.Start());
  LiveSocket socket(SocketUrl(site, "not-the-secret", "program"), "program", Quick());
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) socket.Send("line\n");
  EXPECT_LT(Clock::now() - start, milliseconds(100));
  EXPECT_TRUE(site.WaitFor([](const Records& r) {
    int connects = 0;
    for (auto& e : r) connects += e.value("event", "") == "connect";
    return connects >= 2;
  }));
  const auto closing = Clock::now();
  socket.Close(milliseconds(500));
  EXPECT_LT(Clock::now() - closing, milliseconds(700));
}

}  // namespace
}  // namespace cw
