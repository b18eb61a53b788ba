#include "site/websocket.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"
#include "site/live_queue.h"
#include "site/url.h"

namespace cw {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Endpoints = std::vector<tcp::endpoint>;
using ErrorCode = beast::error_code;

namespace {

// One websocket connection, plain or TLS. Every handler holds the connection
// alive until it has run, so a connection can be dropped with operations in
// flight (they then complete with an error and are ignored).
class Conn {
 public:
  virtual ~Conn() = default;
  virtual void Connect(const Endpoints& endpoints, std::function<void(ErrorCode)> done) = 0;
  // `status` is the HTTP status of a declined upgrade.
  virtual void Handshake(std::function<void(ErrorCode, unsigned status)> done) = 0;
  virtual void Write(std::shared_ptr<const std::string> text, std::function<void(ErrorCode)> done) = 0;
  virtual void Read(std::function<void(ErrorCode)> done) = 0;
  virtual void Close(std::function<void(ErrorCode)> done) = 0;
  virtual void Abort() = 0;
};

struct ConnSettings {
  std::string host;         // for SNI and certificate checks
  std::string host_header;  // host[:port]
  std::string target;
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds idle_timeout;
  std::string user_agent;
  bool verify_tls;
};

template <bool kTls>
class WsConn : public Conn, public std::enable_shared_from_this<WsConn<kTls>> {
  using Stream = std::conditional_t<kTls, websocket::stream<beast::ssl_stream<beast::tcp_stream>>,
                                    websocket::stream<beast::tcp_stream>>;

 public:
  WsConn(net::io_context& ioc, net::ssl::context* ssl, ConnSettings settings)
      : settings_(std::move(settings)) {
    if constexpr (kTls) {
      ws_.emplace(ioc, *ssl);
    } else {
      (void)ssl;
      ws_.emplace(ioc);
    }
  }

  void Connect(const Endpoints& endpoints, std::function<void(ErrorCode)> done) override {
    auto self = this->shared_from_this();
    auto& tcp_layer = beast::get_lowest_layer(*ws_);
    tcp_layer.expires_after(settings_.connect_timeout);
    tcp_layer.async_connect(endpoints, [self, done](ErrorCode ec, const tcp::endpoint&) {
      if (ec) return done(ec);
      if constexpr (kTls) {
        self->StartTls(std::move(done));
      } else {
        done(ec);
      }
    });
  }

  void Handshake(std::function<void(ErrorCode, unsigned)> done) override {
    auto self = this->shared_from_this();
    // From here the websocket's own timeouts rule; the TCP layer's would
    // cut a healthy connection that is merely quiet.
    beast::get_lowest_layer(*ws_).expires_never();
    websocket::stream_base::timeout timeouts{settings_.connect_timeout, settings_.idle_timeout, true};
    ws_->set_option(timeouts);
    ws_->set_option(websocket::stream_base::decorator(
        [ua = settings_.user_agent](websocket::request_type& req) {
          req.set(beast::http::field::user_agent, ua);
        }));
    ws_->async_handshake(response_, settings_.host_header, settings_.target,
                         [self, done](ErrorCode ec) { done(ec, self->response_.result_int()); });
  }

  void Write(std::shared_ptr<const std::string> text, std::function<void(ErrorCode)> done) override {
    auto self = this->shared_from_this();
    ws_->text(true);
    ws_->async_write(net::buffer(*text),
                     [self, text, done](ErrorCode ec, std::size_t) { done(ec); });
  }

  void Read(std::function<void(ErrorCode)> done) override {
    auto self = this->shared_from_this();
    ws_->async_read(read_buffer_, [self, done](ErrorCode ec, std::size_t) {
      // The site has nothing to say on these sockets; what comes is dropped.
      self->read_buffer_.clear();
      done(ec);
    });
  }

  void Close(std::function<void(ErrorCode)> done) override {
    auto self = this->shared_from_this();
    ws_->async_close(websocket::close_code::normal, [self, done](ErrorCode ec) { done(ec); });
  }

  void Abort() override {
    ErrorCode ignored;
    beast::get_lowest_layer(*ws_).socket().close(ignored);
  }

 private:
  void StartTls(std::function<void(ErrorCode)> done) {
    if constexpr (kTls) {
      auto& tls = ws_->next_layer();
      ErrorCode ec;
      net::ip::make_address(settings_.host, ec);
      const bool is_ip = !ec;
      if (!is_ip) SSL_set_tlsext_host_name(tls.native_handle(), settings_.host.c_str());
      if (settings_.verify_tls) {
        tls.set_verify_mode(net::ssl::verify_peer);
        tls.set_verify_callback(net::ssl::host_name_verification(settings_.host));
      } else {
        tls.set_verify_mode(net::ssl::verify_none);
      }
      auto self = this->shared_from_this();
      tls.async_handshake(net::ssl::stream_base::client, [self, done](ErrorCode ec) { done(ec); });
    } else {
      (void)done;
    }
  }

  ConnSettings settings_;
  std::optional<Stream> ws_;
  websocket::response_type response_;
  beast::flat_buffer read_buffer_;
};

// Name lookups run on a thread of their own: getaddrinfo cannot be
// cancelled and may take many seconds, and closing a socket must not wait
// for it. The lookup posts its answer only while the socket still listens.
struct ResolveMailbox {
  Mutex mu;
  net::io_context* ioc GUARDED_BY(mu) = nullptr;  // null once the socket stopped listening
};

enum class State { kConnecting, kOpen, kWaiting, kClosing, kDone };

constexpr std::chrono::seconds kStableConnection{10};

std::string Millis(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

class LiveSocket::Impl {
 public:
  Impl(std::string url, std::string kind, LiveSocketOptions options)
      : url_(std::move(url)),
        redacted_(RedactUrl(url_)),
        kind_(kind),
        options_(std::move(options)),
        queue_(std::move(kind), options_.max_pending_bytes, options_.max_frame_text_bytes),
        work_(net::make_work_guard(ioc_)),
        timer_(ioc_),
        backoff_(options_.first_backoff),
        mailbox_(std::make_shared<ResolveMailbox>()) {
    auto parsed = ParseUrl(url_);
    if (!parsed.ok() || (parsed->scheme != "ws" && parsed->scheme != "wss")) {
      spdlog::warn("live {} output is off: {}", kind_,
                   parsed.ok() ? "'" + redacted_ + "' is not a ws:// or wss:// URL"
                               : parsed.status().message());
      state_ = State::kDone;
      done_ = true;
      refused_ = true;
      return;
    }
    url_parts_ = *parsed;
    tls_ = url_parts_.scheme == "wss";
    if (tls_) {
      ssl_.emplace(net::ssl::context::tls_client);
      ErrorCode ec;
      if (options_.ca_bundle.empty()) {
        ssl_->set_default_verify_paths(ec);
      } else {
        ssl_->load_verify_file(options_.ca_bundle, ec);
      }
      if (ec) spdlog::warn("live {} output: cannot load TLS certificates: {}", kind_, ec.message());
    }
    mailbox_->ioc = &ioc_;
    thread_ = std::thread([this] { ioc_.run(); });
    net::post(ioc_, [this] { StartConnect(); });
  }

  ~Impl() { Close(std::chrono::milliseconds(0)); }

  bool Send(std::string text) { return Enqueue(std::move(text), /*message=*/false); }

  bool SendMessage(std::string json) { return Enqueue(std::move(json), /*message=*/true); }

  // Queues `payload` (a message's JSON, or output text) unless the socket is
  // closing or closed (then the bytes count as dropped), and wakes the writer
  // when something was queued.
  bool Enqueue(std::string payload, bool message) {
    bool queued;
    {
      MutexLock lock(mu_);
      if (done_ || closing_) {
        dropped_after_close_ += payload.size();
        return false;
      }
      queued = message ? queue_.PushMessage(std::move(payload)) : queue_.PushText(payload);
    }
    if (queued) Wake();
    return queued;
  }

  void Close(std::chrono::milliseconds grace) {
    {
      MutexLock lock(mu_);
      if (close_called_) return;
      close_called_ = true;
      if (!done_) {
        closing_ = true;
        queue_.QueueDropNote();
      }
    }
    if (thread_.joinable()) {
      net::post(ioc_, [this] { OnCloseRequested(); });
      MutexLock lock(mu_);
      const auto until = std::chrono::steady_clock::now() + grace;
      while (!done_ && cv_.WaitUntil(lock, until)) {
      }
    }
    Stop();
    {
      // What the grace did not let through was not shown either.
      MutexLock lock(mu_);
      queue_.DropAll();
    }
    LiveSocketStats s = stats();
    if (s.bytes_dropped > 0 && !s.refused) {
      spdlog::info("live {} output: {} bytes were not shown live (the full log is in storage)",
                   kind_, s.bytes_dropped);
    }
  }

  LiveSocketStats stats() const {
    LiveSocketStats s;
    s.frames_sent = frames_sent_.load();
    s.connects = connects_.load();
    s.connected = connected_.load();
    MutexLock lock(mu_);
    s.bytes_dropped = queue_.dropped_bytes() + dropped_after_close_;
    s.refused = refused_;
    return s;
  }

 private:
  // Called from any thread: have the socket's thread look at the queue.
  // At most one wake-up waits at a time, however often Send is called.
  void Wake() {
    if (!wake_posted_.exchange(true)) {
      net::post(ioc_, [this] {
        wake_posted_ = false;
        Pump();
      });
    }
  }

  void Stop() {
    if (!thread_.joinable()) return;
    {
      MutexLock lock(mailbox_->mu);
      mailbox_->ioc = nullptr;
    }
    work_.reset();
    ioc_.stop();
    thread_.join();
    connected_ = false;
    // Pending handlers (each holding its connection) go with the io_context.
    if (conn_) conn_->Abort();
  }

  // Everything below runs on the socket's thread.

  void StartConnect() {
    if (state_ == State::kDone) return;
    state_ = State::kConnecting;
    const int generation = ++generation_;
    const std::string port = url_parts_.PortOrDefault();
    ErrorCode ec;
    net::ip::address address = net::ip::make_address(url_parts_.host, ec);
    if (!ec) {
      OnResolved(generation, Endpoints{tcp::endpoint(address, static_cast<unsigned short>(std::stoi(port)))}, "");
      return;
    }
    std::thread([mailbox = mailbox_, host = url_parts_.host, port, generation, this] {
      net::io_context lookup_context;
      tcp::resolver resolver(lookup_context);
      ErrorCode lookup_error;
      auto results = resolver.resolve(host, port, lookup_error);
      Endpoints endpoints;
      if (!lookup_error) {
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
      }
      std::string error = lookup_error ? "cannot resolve " + host + ": " + lookup_error.message() : "";
      MutexLock lock(mailbox->mu);
      if (!mailbox->ioc) return;
      net::post(*mailbox->ioc, [this, generation, endpoints = std::move(endpoints), error] {
        OnResolved(generation, endpoints, error);
      });
    }).detach();
  }

  void OnResolved(int generation, const Endpoints& endpoints, const std::string& error) {
    if (generation != generation_ || state_ != State::kConnecting) return;
    if (!error.empty()) return Broken(error);
    if (endpoints.empty()) return Broken("no address for " + url_parts_.host);
    ConnSettings settings{url_parts_.host, url_parts_.HostHeader(), url_parts_.target,
                          options_.connect_timeout, options_.idle_timeout, options_.user_agent,
                          options_.verify_tls};
    std::shared_ptr<Conn> conn;
    if (tls_) {
      conn = std::make_shared<WsConn<true>>(ioc_, &*ssl_, std::move(settings));
    } else {
      conn = std::make_shared<WsConn<false>>(ioc_, nullptr, std::move(settings));
    }
    conn_ = conn;
    conn->Connect(endpoints, [this, conn](ErrorCode ec) {
      if (conn != conn_) return;
      if (ec) return Broken("cannot connect: " + ec.message());
      conn->Handshake([this, conn](ErrorCode ec, unsigned status) {
        if (conn != conn_) return;
        if (ec == websocket::error::upgrade_declined && status >= 400 && status < 500) {
          return Refused(status);
        }
        if (ec) {
          std::string why = "the websocket handshake failed: " + ec.message();
          if (ec == websocket::error::upgrade_declined) why += " (HTTP " + std::to_string(status) + ")";
          return Broken(why);
        }
        Opened(conn);
      });
    });
  }

  void Opened(const std::shared_ptr<Conn>& conn) {
    state_ = State::kOpen;
    connected_ = true;
    ++connects_;
    opened_at_ = std::chrono::steady_clock::now();
    if (announce_reconnect_) {
      spdlog::info("live {} output: connected to {} again", kind_, redacted_);
      announce_reconnect_ = false;
    } else {
      spdlog::debug("live {} output: connected to {}", kind_, redacted_);
    }
    ReadLoop(conn);
    Pump();
  }

  void ReadLoop(const std::shared_ptr<Conn>& conn) {
    conn->Read([this, conn](ErrorCode ec) {
      if (conn != conn_) return;
      if (!ec) return ReadLoop(conn);
      if (state_ == State::kClosing) return;  // the close handshake finishes it
      Broken(ec == websocket::error::closed ? "the site closed the socket"
             : (ec == net::error::eof || ec == net::error::connection_reset)
                 ? "the connection dropped (" + ec.message() + ")"
                 : ec.message());
    });
  }

  void Pump() {
    if (state_ != State::kOpen || writing_) return;
    std::optional<LiveQueue::Frame> frame;
    bool closing;
    {
      MutexLock lock(mu_);
      frame = queue_.Pop();
      closing = closing_;
    }
    if (!frame) {
      if (closing) CloseGracefully();
      return;
    }
    writing_ = true;
    auto conn = conn_;
    const std::size_t bytes = frame->bytes;
    const std::uint64_t note_for = frame->note_for;
    auto text = std::make_shared<const std::string>(std::move(frame->json));
    conn->Write(text, [this, conn, bytes, note_for](ErrorCode ec) {
      if (conn != conn_) {
        Lost(bytes, note_for);
        return;
      }
      writing_ = false;
      if (ec) {
        Lost(bytes, note_for);
        return Broken("sending failed: " + ec.message());
      }
      ++frames_sent_;
      Pump();
    });
  }

  void Lost(std::size_t bytes, std::uint64_t note_for) {
    MutexLock lock(mu_);
    queue_.Lost(bytes, note_for);
  }

  void CloseGracefully() {
    state_ = State::kClosing;
    auto conn = conn_;
    conn->Close([this, conn](ErrorCode) {
      if (conn == conn_) Finish();
    });
  }

  void OnCloseRequested() {
    switch (state_) {
      case State::kOpen:
        Pump();  // with an empty queue it closes at once
        break;
      case State::kWaiting:
        // No connection to flush to; waiting for one would outlast any grace.
        timer_.cancel();
        Finish();
        break;
      case State::kConnecting:  // may still open in time; it then flushes
      case State::kClosing:
      case State::kDone:
        break;
    }
  }

  void Broken(const std::string& why) {
    if (state_ == State::kWaiting || state_ == State::kDone) return;
    // Only a connection that lasted counts as recovery: a site that accepts
    // and at once drops us must not be hammered at the first backoff.
    if (state_ == State::kOpen && std::chrono::steady_clock::now() - opened_at_ >= kStableConnection) {
      backoff_ = options_.first_backoff;
      failures_ = 0;
    }
    connected_ = false;
    writing_ = false;
    if (conn_) {
      conn_->Abort();
      conn_.reset();
    }
    bool closing;
    {
      MutexLock lock(mu_);
      closing = closing_;
    }
    if (closing) return Finish();
    if (options_.on_failure) options_.on_failure();
    // The first failure in a row is worth a warning; the retries are not.
    if (failures_++ == 0) {
      announce_reconnect_ = true;
      spdlog::warn("live {} output to {}: {}; trying again from time to time (logs still go to storage)",
                   kind_, redacted_, why);
    } else {
      spdlog::debug("live {} output to {}: {} (try {}; next in {})", kind_, redacted_, why, failures_,
                    Millis(backoff_));
    }
    state_ = State::kWaiting;
    timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    timer_.async_wait([this](ErrorCode ec) {
      if (!ec && state_ == State::kWaiting) StartConnect();
    });
  }

  void Refused(unsigned status) {
    spdlog::warn("live {} output: the site refused the socket {} with HTTP {} (the submission's "
                 "secret may not match); no live output for it, the logs still go to storage",
                 kind_, redacted_, status);
    if (options_.on_failure) options_.on_failure();
    if (conn_) {
      conn_->Abort();
      conn_.reset();
    }
    {
      MutexLock lock(mu_);
      refused_ = true;
      queue_.DropAll();
    }
    Finish();
  }

  void Finish() {
    state_ = State::kDone;
    connected_ = false;
    {
      MutexLock lock(mu_);
      done_ = true;
    }
    cv_.NotifyAll();
  }

  const std::string url_;
  const std::string redacted_;
  const std::string kind_;
  const LiveSocketOptions options_;
  ParsedUrl url_parts_;
  bool tls_ = false;

  // Shared with the threads that call Send and Close.
  mutable Mutex mu_;
  CondVar cv_;
  LiveQueue queue_ GUARDED_BY(mu_);
  bool closing_ GUARDED_BY(mu_) = false;
  bool close_called_ GUARDED_BY(mu_) = false;
  bool done_ GUARDED_BY(mu_) = false;  // nothing more will be sent
  bool refused_ GUARDED_BY(mu_) = false;
  std::uint64_t dropped_after_close_ GUARDED_BY(mu_) = 0;
  // Atomics, read from any thread without the lock.
  std::atomic<bool> wake_posted_{false};
  std::atomic<std::uint64_t> frames_sent_{0};
  std::atomic<int> connects_{0};
  std::atomic<bool> connected_{false};

  // The socket's thread only. Declaration order matters: the TLS context
  // outlives the io_context, whose pending handlers may hold the last
  // reference to a TLS stream, and the io_context outlives its users.
  std::optional<net::ssl::context> ssl_;
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  net::steady_timer timer_;
  std::shared_ptr<Conn> conn_;
  State state_ = State::kConnecting;
  bool writing_ = false;
  int generation_ = 0;
  int failures_ = 0;  // since the last connection that lasted
  bool announce_reconnect_ = false;
  std::chrono::steady_clock::time_point opened_at_;
  std::chrono::milliseconds backoff_;
  std::shared_ptr<ResolveMailbox> mailbox_;
  std::thread thread_;
};

LiveSocket::LiveSocket(std::string url, std::string message_kind, LiveSocketOptions options)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(message_kind), std::move(options))) {}

LiveSocket::~LiveSocket() = default;

bool LiveSocket::Send(std::string text) { return impl_->Send(std::move(text)); }

bool LiveSocket::SendMessage(std::string json) { return impl_->SendMessage(std::move(json)); }

void LiveSocket::Close(std::chrono::milliseconds grace) { impl_->Close(grace); }

LiveSocketStats LiveSocket::stats() const { return impl_->stats(); }

}  // namespace cw
