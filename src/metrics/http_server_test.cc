#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace cw::metrics {
namespace {

// Sends `request` to 127.0.0.1:port and returns everything the server wrote.
std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "connect failed";
  }
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
