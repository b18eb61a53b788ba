// Runs fake_site.py (a stand-in Codabench site) for a test: start, kill,
// start again on the same port, and read what it heard.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace cw::testing_site {

namespace fs = std::filesystem;
using Records = std::vector<nlohmann::json>;

// A port nothing listens on now (the kernel's choice; free until someone takes it).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool PortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

class FakeSite {
 public:
  FakeSite(std::string secret, std::string ws_mismatch = "reject")
      : secret_(std::move(secret)), ws_mismatch_(std::move(ws_mismatch)), port_(FreePort()) {
    std::string tmpl = (fs::temp_directory_path() / "cw_fake_site_XXXXXX").string();
    if (::mkdtemp(tmpl.data())) dir_ = tmpl;
  }

  // Serve HTTPS and WSS with a new self-signed certificate for 127.0.0.1
  // (its file is certificate()). Call before Start.
  ::testing::AssertionResult UseTls() {
    const std::string cert = (dir_ / "cert.pem").string();
    const std::string key = (dir_ / "key.pem").string();
    const std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout '" + key + "' -out '" + cert + "' 2>/dev/null";
    if (std::system(command.c_str()) != 0) return ::testing::AssertionFailure() << "openssl failed: " << command;
    tls_ = true;
    return ::testing::AssertionSuccess();
  }
  std::string certificate() const { return (dir_ / "cert.pem").string(); }
  ~FakeSite() {
    Kill();
    std::error_code ec;
    if (!::getenv("CW_KEEP_FAKE_SITE")) fs::remove_all(dir_, ec);
  }
  FakeSite(const FakeSite&) = delete;
  FakeSite& operator=(const FakeSite&) = delete;

  // Starts the server and waits until it accepts connections.
  ::testing::AssertionResult Start() {
    const std::string port = std::to_string(port_);
    const std::string record = (dir_ / "record.jsonl").string();
    const std::string storage = (dir_ / "storage").string();
    const std::string mismatch = "--ws-mismatch=" + ws_mismatch_;
    std::vector<std::string> argv_s = {CW_SITE_PYTHON, CW_FAKE_SITE, "--port", port, "--secret", secret_,
                                       "--record", record, "--storage", storage, mismatch};
    if (tls_) {
      for (const std::string& a : {std::string("--tls-cert"), certificate(), std::string("--tls-key"),
                                   (dir_ / "key.pem").string()}) {
        argv_s.push_back(a);
      }
    }
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_ / "server.log").string();
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return ::testing::AssertionFailure() << "cannot start " << CW_SITE_PYTHON;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (PortAccepts(port_)) return ::testing::AssertionSuccess();
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure() << "the fake site exited: " << ServerLog();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ::testing::AssertionFailure() << "the fake site did not listen in time: " << ServerLog();
  }

  // SIGKILL: the connections drop without a close handshake, as when a site crashes.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  const std::string& secret() const { return secret_; }
  std::string Url(const std::string& path) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  const fs::path& dir() const { return dir_; }

  Records Read() const {
    Records out;
    std::ifstream in(dir_ / "record.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) out.push_back(std::move(j));
    }
    return out;
  }

  // The records with "event" == `event` (and "kind" == `kind` when given).
  Records Events(const std::string& event, const std::string& kind = "") const {
    Records out;
    for (auto& r : Read()) {
      if (r.value("event", "") == event && (kind.empty() || r.value("kind", "") == kind)) out.push_back(r);
    }
    return out;
  }

  // Waits until `done` holds for the records, or `timeout` passes.
  bool WaitFor(const std::function<bool(const Records&)>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(Read())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done(Read());
  }

  std::string ServerLog() const {
    std::ifstream in(dir_ / "server.log");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text;
  }

 private:
  std::string secret_;
  std::string ws_mismatch_;
  int port_;
  bool tls_ = false;
  fs::path dir_;
  pid_t pid_ = -1;
};

// The text of the "message" fields of the websocket messages of `kind`, joined.
inline std::string JoinedMessages(const Records& records, const std::string& kind) {
  std::string out;
  for (const auto& r : records) {
    if (r.value("event", "") != "message" || r.value("kind", "") != kind) continue;
    auto j = nlohmann::json::parse(r["data"].get<std::string>(), nullptr, false);
    if (j.is_object() && j.contains("message")) out += j["message"].get<std::string>();
  }
  return out;
}

}  // namespace cw::testing_site
