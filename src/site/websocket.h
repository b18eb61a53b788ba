// One live-output websocket to the Codabench site (contract §3, "Live logs"),
// e.g. ws://host/submission_input/<user>/<id>/<secret>/?kind=program.
//
// The job must never wait for it: Send only queues (bounded, see
// live_queue.h) and a thread of the socket's own does all network work,
// reconnecting with backoff when the site goes away. A site that refuses
// the socket (a secret that does not match) turns it off for good. Close and
// the destructor return within their bound whatever the network does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace cw {

struct LiveSocketOptions {
  std::size_t max_pending_bytes = 1 << 20;
  std::size_t max_frame_text_bytes = 64 << 10;
  // Each of: TCP (and TLS) connect, websocket handshake.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds first_backoff{1000};
  std::chrono::milliseconds max_backoff{30000};
  // A connection that hears nothing (not even a pong) for this long is
  // taken for dead; pings go out at half of it.
  std::chrono::milliseconds idle_timeout{30000};
  bool verify_tls = true;
  std::string ca_bundle;  // a PEM file; empty: the system's
  std::string user_agent = "codabench-worker";
  // Called on the socket's thread each time a connection attempt fails, a
  // connection drops or the site refuses the socket (not on Close): the
  // metrics count them. Must not block.
  std::function<void()> on_failure;
};

struct LiveSocketStats {
  std::uint64_t frames_sent = 0;
  std::uint64_t bytes_dropped = 0;  // output never delivered
  int connects = 0;                 // successful handshakes
  bool connected = false;
  bool refused = false;  // the site declined the handshake; the socket is off
};

class LiveSocket {
 public:
  // `message_kind` is the "kind" that text from Send is shown under
  // ("program", "ingestion", "stderr"). Connecting starts at once.
  LiveSocket(std::string url, std::string message_kind, LiveSocketOptions options = {});
  // Close(0) when Close was not called: at most a few milliseconds.
  ~LiveSocket();
  LiveSocket(const LiveSocket&) = delete;
  LiveSocket& operator=(const LiveSocket&) = delete;

  // Queues output text (coalesced with what waits before it); never blocks.
  // False when it was dropped (queue full, socket refused or closed).
  bool Send(std::string text);
  // Queues a whole JSON message as a frame of its own; never blocks.
  bool SendMessage(std::string json);

  // Sends what it can within `grace`, closes the websocket properly when
  // the queue emptied in time, and stops the socket's thread. Later sends
  // are dropped. Returns within `grace` plus a few milliseconds.
  void Close(std::chrono::milliseconds grace);

  LiveSocketStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cw
