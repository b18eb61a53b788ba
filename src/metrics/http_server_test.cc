#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

namespace cw::metrics {
namespace {

// A connection to 127.0.0.1:port (-1 when refused); left idle, it is what a
// stranger holding the port does.
int IdleConnection(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` to 127.0.0.1:port and returns everything the server wrote.
std::string Exchange(int port, const std::string& request) {
  int fd = IdleConnection(port);
  if (fd < 0) return "connect failed";
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

HttpServer MakeServer(HttpServerOptions options = {}) {
  return HttpServer({{"/metrics", [] { return HttpResponse{200, "text/plain; version=0.0.4", "m 1\n"}; }},
                     {"/readyz", [] { return HttpResponse{503, "text/plain", "broker: down\n"}; }}},
                    options);
}

TEST(ListenAddress, Parses) {
  auto a = ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "9464");
  auto b = ParseListenAddress("[::1]:80");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_FALSE(ParseListenAddress("9464").ok());
  EXPECT_FALSE(ParseListenAddress(":9464").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:http").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:99999").ok());
}

TEST(HttpServer, Routes) {
  HttpServer s = MakeServer();
  EXPECT_EQ(s.Answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").code, 200);
  EXPECT_EQ(s.Answer("GET /metrics?x=1 HTTP/1.1\r\n\r\n").body, "m 1\n");
  EXPECT_EQ(s.Answer("GET /other HTTP/1.1\r\n\r\n").code, 404);
  EXPECT_EQ(s.Answer("POST /metrics HTTP/1.1\r\n\r\n").code, 405);
  EXPECT_EQ(s.Answer("garbage\r\n\r\n").code, 400);
}

TEST(HttpServer, ServesOverTcp) {
  HttpServer s = MakeServer();
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  ASSERT_GT(s.port(), 0);
  std::string r = Exchange(s.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Length: 4\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.substr(r.size() - 4), "m 1\n");
  r = Exchange(s.port(), "GET /readyz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << r;
  r = Exchange(s.port(), "GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 404 ", 0), 0u) << r;
  s.Stop();
}

TEST(HttpServer, BoundsTheRequest) {
  HttpServerOptions options;
  options.max_request_bytes = 100;
  HttpServer s = MakeServer(options);
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  std::string r = Exchange(s.port(), "GET /metrics HTTP/1.1\r\nX: " + std::string(5000, 'a'));
  EXPECT_EQ(r.rfind("HTTP/1.1 431 ", 0), 0u) << r;
}

TEST(HttpServer, ASilentClientIsDroppedAfterTheTimeout) {
  HttpServerOptions options;
  options.io_timeout = std::chrono::milliseconds(300);
  HttpServer s = MakeServer(options);
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  auto t0 = std::chrono::steady_clock::now();
  std::string r = Exchange(s.port(), "GET /metrics HTTP/1.1\r\n");  // never ends its headers
  EXPECT_EQ(r, "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  // ... and the next client is served.
  r = Exchange(s.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
}


// One connection at a time used to mean 200 idle connections held a probe
// for 200 times the 5 s timeout.
TEST(HttpServer, AProbeIsAnsweredWhileHundredsOfIdleConnectionsAreHeld) {
  HttpServer s = MakeServer();  // io_timeout 5 s
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    int fd = IdleConnection(s.port());
    ASSERT_GE(fd, 0) << i;
    idle.push_back(fd);
  }
  // Half of them send half a request and stop.
  for (std::size_t i = 0; i < idle.size(); i += 2) {
    (void)send(idle[i], "GET /metrics HTTP/1.1\r\n", 24, MSG_NOSIGNAL);
  }
  auto t0 = std::chrono::steady_clock::now();
  std::string r = Exchange(s.port(), "GET /readyz HTTP/1.1\r\n\r\n");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
  EXPECT_LT(took, std::chrono::seconds(1));  // far under one idle connection's timeout
  for (int fd : idle) close(fd);
}

TEST(HttpServer, PastTheCapTheOldestConnectionMakesRoom) {
  HttpServerOptions options;
  options.max_connections = 8;
  HttpServer s = MakeServer(options);
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(IdleConnection(s.port()));
  std::string r = Exchange(s.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  // The first idle connection was closed for it: it reads the end of the stream.
  char c;
  EXPECT_EQ(recv(idle[0], &c, 1, 0), 0);
  for (int fd : idle) close(fd);
}

TEST(HttpServer, TokenPathsNeedTheBearerToken) {
  HttpServerOptions options;
  options.token = "s3cret-token";
  options.token_paths = {"/status"};
  HttpServer s({{"/status", [] { return HttpResponse{200, "application/json", "{}"}; }},
                {"/metrics", [] { return HttpResponse{200, "text/plain", "m 1\n"}; }}},
               options);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\n\r\n").code, 401);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n").code, 401);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\nAuthorization: Bearer s3cret-token-and-more\r\n\r\n").code, 401);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\nAuthorization: Basic czNjcmV0LXRva2Vu\r\n\r\n").code, 401);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\nHost: x\r\nauthorization: Bearer s3cret-token\r\n\r\n").code, 200);
  // A header after the blank line is body, not a header.
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\n\r\nAuthorization: Bearer s3cret-token\r\n").code, 401);
  EXPECT_EQ(s.Answer("GET /metrics HTTP/1.1\r\n\r\n").code, 200);  // others need nothing
  ASSERT_TRUE(s.Start("127.0.0.1:0").ok());
  std::string r = Exchange(s.port(), "GET /status HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("WWW-Authenticate: Bearer\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.find("{}"), std::string::npos) << r;
}

TEST(HttpServer, TokenPathsAreNotServedWithoutAToken) {
  HttpServerOptions options;
  options.token_paths = {"/status"};
  HttpServer s({{"/status", [] { return HttpResponse{200, "application/json", "{}"}; }}}, options);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n").code, 404);
  EXPECT_EQ(s.Answer("GET /status HTTP/1.1\r\n\r\n").code, 404);
}

TEST(HttpServer, BindFailureNamesTheSetting) {
  HttpServer a = MakeServer();
  ASSERT_TRUE(a.Start("127.0.0.1:0").ok());
  HttpServer b = MakeServer();
  Status st = b.Start("127.0.0.1:" + std::to_string(a.port()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("METRICS_ADDRESS 127.0.0.1:"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace cw::metrics
