// The consumer against a real RabbitMQ, with Celery and kombu (as the site and
// the Python worker use them) on the other side. CW_TEST_BROKER_URL names the
// vhost; fresh_vhost.sh makes one. Every test uses its own queue and node
// name, so they can share the vhost and run in parallel.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/wait.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/amqp_client.h"
#include "broker/broker_url.h"
#include "broker/celery.h"
#include "broker/consumer.h"
#include "common/files.h"

namespace cw {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kTestDir = CW_BROKER_TEST_DIR;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The Python side; returns its stdout, trimmed. Fails the test when it fails.
std::string Peer(const std::vector<std::string>& args) {
  std::string command = "/usr/bin/python3 " + Quote(kTestDir + "/celery_peer.py");
  for (const auto& arg : args) command += " " + Quote(arg);
  CommandResult result = RunCommand(command);
  EXPECT_EQ(result.exit_code, 0) << command << "\n" << result.output;
  while (!result.output.empty() && std::isspace(static_cast<unsigned char>(result.output.back()))) {
    result.output.pop_back();
  }
  return result.output;
}

void CloseConnectionNamed(const std::string& name) {
  CommandResult result = RunCommand(Quote(kTestDir + "/close_connection.sh") + " " + Quote(name));
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

class RecordingHandler : public BrokerHandler {
 public:
  struct Received {
    std::uint64_t epoch;
    Delivery delivery;
  };

  void OnDelivery(std::uint64_t epoch, Delivery delivery) override {
    std::lock_guard lock(mu_);
    deliveries_.push_back({epoch, std::move(delivery)});
    cv_.notify_all();
  }
  json OnControl(const ControlMessage& message) override {
    std::lock_guard lock(mu_);
    controls_.push_back(message);
    cv_.notify_all();
    if (message.method == "ping") return json{{"ok", "pong"}};
    return nullptr;
  }
  void OnConnectionState(bool connected, const std::string& detail) override {
    std::lock_guard lock(mu_);
    states_.push_back({connected, detail});
    cv_.notify_all();
  }

  // Waits for the next delivery not yet taken.
  std::optional<Received> NextDelivery(std::chrono::seconds timeout = 15s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !deliveries_.empty(); })) return std::nullopt;
    Received r = std::move(deliveries_.front());
    deliveries_.pop_front();
    return r;
  }
  std::optional<ControlMessage> NextControl(const std::string& method,
                                            std::chrono::seconds timeout = 15s) {
    std::unique_lock lock(mu_);
    std::optional<ControlMessage> found;
    cv_.wait_for(lock, timeout, [&] {
      for (auto it = controls_.begin(); it != controls_.end(); ++it) {
        if (it->method == method) {
          found = *it;
          controls_.erase(it);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // States reported so far, and waits until `count` of them are in.
  std::vector<std::pair<bool, std::string>> States(size_t count, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return states_.size() >= count; });
    return states_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Received> deliveries_;
  std::vector<ControlMessage> controls_;
  std::vector<std::pair<bool, std::string>> states_;
};

// QueueConsumer::Run on its own thread, stopped on destruction.
class RunningConsumer {
 public:
  RunningConsumer(const BrokerAddress& address, const ConsumerOptions& options,
                  BrokerHandler& handler)
      : consumer_(address, options, handler), thread_([this] { consumer_.Run(stop_); }) {}
  ~RunningConsumer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  QueueConsumer& operator*() { return consumer_; }
  QueueConsumer* operator->() { return &consumer_; }

  // Waits until the consumer is connected on an epoch of at least `epoch`.
  bool WaitConnected(std::uint64_t epoch = 1, std::chrono::seconds timeout = 15s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (consumer_.connected() && consumer_.epoch() >= epoch) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  std::atomic<bool> stop_{false};
  QueueConsumer consumer_;
  std::thread thread_;
};

class BrokerIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("CW_TEST_BROKER_URL");
    ASSERT_NE(url, nullptr) << "CW_TEST_BROKER_URL is not set: start RabbitMQ and run "
                               "tests/broker/fresh_vhost.sh to get one";
    url_ = url;
    auto parsed = ParseBrokerUrl(url_, false);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    address_ = *parsed;
    AmqpClient probe;
    Status st = probe.Connect(address_, Quick());
    ASSERT_TRUE(st.ok()) << "the test broker is unreachable: " << st.ToString();
    suffix_ = RandomHex(4);
  }

  static ConnectOptions Quick() {
    ConnectOptions options;
    options.connect_timeout = 5s;
    options.rpc_timeout = 10s;
    options.heartbeat_s = 10;
    return options;
  }

  ConsumerOptions Options(const std::string& queue = "") {
    ConsumerOptions options;
    options.queue = queue.empty() ? "compute-worker-" + suffix_ : queue;
    options.nodename = "compute-worker@it-" + suffix_;
    options.connect = Quick();
    options.reconnect_min = 200ms;
    options.reconnect_max = 1000ms;
    return options;
  }

  // Ready (not unacked) messages in `queue`.
  std::uint32_t ReadyMessages(const std::string& queue) {
    AmqpClient client;
    Status st = client.Connect(address_, Quick());
    EXPECT_TRUE(st.ok()) << st.ToString();
    auto state = client.InspectQueue(queue);
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? state->messages : 999;
  }

  std::string SendTask(const std::string& queue, const json& run_args) {
    return Peer({"send", url_, queue, run_args.dump()});
  }

  std::string url_;
  BrokerAddress address_;
  std::string suffix_;
};

TEST_F(BrokerIntegration, CeleryTaskIsReceivedParsedAndAcked) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());

  json run_args = {{"id", 42}, {"is_scoring", false}, {"secret", "s-1"}};
  std::string task_id = SendTask(options.queue, run_args);
  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->epoch, consumer->epoch());
  EXPECT_FALSE(received->delivery.redelivered);
  EXPECT_EQ(received->delivery.props.priority, 0);
  EXPECT_EQ(received->delivery.props.correlation_id, task_id);

  auto task = ParseTaskMessage(received->delivery.props, received->delivery.body);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(task->task, "compute_worker_run");
  EXPECT_EQ(task->id, task_id);
  EXPECT_EQ(task->protocol, 2);
  ASSERT_EQ(task->args.size(), 1u);
  EXPECT_EQ(task->args[0], run_args);
  EXPECT_EQ(task->soft_time_limit, 60.0);
  EXPECT_FALSE(task->hard_time_limit.has_value());

  consumer->Ack(received->epoch, received->delivery.delivery_tag);
  std::this_thread::sleep_for(500ms);
  consumer.Stop();  // an unacked message would now be ready again
  EXPECT_EQ(ReadyMessages(options.queue), 0u);
}

TEST_F(BrokerIntegration, UnparsableMessageIsRejectedWithoutRequeue) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());

  AmqpClient sender;
  ASSERT_TRUE(sender.Connect(address_, Quick()).ok());
  MessageProperties pickle;
  pickle.content_type = "application/x-python-serialize";
  pickle.content_encoding = "binary";
  ASSERT_TRUE(sender.Publish(options.queue, options.queue, "\x80\x04N.", pickle).ok());

  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());
  auto task = ParseTaskMessage(received->delivery.props, received->delivery.body);
  ASSERT_FALSE(task.ok());
  EXPECT_NE(task.status().message().find("pickle"), std::string::npos);
  consumer->Reject(received->epoch, received->delivery.delivery_tag, /*requeue=*/false);
  std::this_thread::sleep_for(500ms);
  consumer.Stop();
  EXPECT_EQ(ReadyMessages(options.queue), 0u);
}

TEST_F(BrokerIntegration, UnackedMessageIsRedeliveredOnTheNextEpochAndStaleAcksAreDropped) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());

  std::string task_id = SendTask(options.queue, {{"id", 1}});
  auto first = handler.NextDelivery();
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->delivery.redelivered);
  std::uint64_t first_epoch = first->epoch;

  CloseConnectionNamed(options.nodename);
  ASSERT_TRUE(consumer.WaitConnected(first_epoch + 1));
  auto again = handler.NextDelivery();
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->delivery.redelivered);
  EXPECT_GT(again->epoch, first_epoch);
  EXPECT_EQ(ParseTaskMessage(again->delivery.props, again->delivery.body)->id, task_id);
  // Delivery tags restart with each channel: the stale ack names the same tag
  // as the new delivery and must not ack it.
  EXPECT_EQ(again->delivery.delivery_tag, first->delivery.delivery_tag);

  consumer->Ack(first_epoch, first->delivery.delivery_tag);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(consumer->connected());
  EXPECT_EQ(consumer->epoch(), again->epoch);  // the stale ack broke nothing
  consumer.Stop();
  EXPECT_EQ(ReadyMessages(options.queue), 1u);  // still there: the stale ack was dropped
}

TEST_F(BrokerIntegration, CeleryInspectPingGetsOurPong) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());

  CommandResult ping = RunCommand("/usr/bin/python3 -m celery --broker " + Quote(url_) +
                                  " inspect ping -d " + Quote(options.nodename) + " --timeout 5");
  EXPECT_EQ(ping.exit_code, 0) << ping.output;
  EXPECT_NE(ping.output.find(options.nodename + ": OK"), std::string::npos) << ping.output;
  EXPECT_NE(ping.output.find("pong"), std::string::npos) << ping.output;
  EXPECT_NE(ping.output.find("1 node online"), std::string::npos) << ping.output;
  auto seen = handler.NextControl("ping", 1s);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->reply_exchange, "reply.celery.pidbox");
  EXPECT_FALSE(seen->ticket.empty());
}

TEST_F(BrokerIntegration, RevokeFromCeleryReachesOnControl) {
  RecordingHandler handler;
  RunningConsumer consumer(address_, Options(), handler);
  ASSERT_TRUE(consumer.WaitConnected());

  Peer({"revoke", url_, "task-" + suffix_});
  auto revoke = handler.NextControl("revoke");
  ASSERT_TRUE(revoke.has_value());
  EXPECT_EQ(revoke->arguments["task_id"], "task-" + suffix_);
  EXPECT_EQ(revoke->arguments["terminate"], true);
  EXPECT_TRUE(revoke->reply_routing_key.empty());
}

TEST_F(BrokerIntegration, QueueDeclaredByKombuFirstAndTheOtherWayRound) {
  // The real name, as in production; no other test uses it.
  const std::string queue = "compute-worker";
  {
    AmqpClient admin;
    ASSERT_TRUE(admin.Connect(address_, Quick()).ok());
    ASSERT_TRUE(admin.DeleteQueue(queue).ok());
  }
  ConsumerOptions options = Options(queue);
  // As the Python worker declares the queue, its pidbox queue and celeryev.
  Peer({"declare", url_, queue, options.nodename});
  RecordingHandler handler;
  {
    RunningConsumer consumer(address_, options, handler);
    ASSERT_TRUE(consumer.WaitConnected()) << "our declare was refused";
    auto states = handler.States(1, 1s);
    ASSERT_FALSE(states.empty());
    EXPECT_TRUE(states.front().first) << states.front().second;
  }
  {
    AmqpClient admin;
    ASSERT_TRUE(admin.Connect(address_, Quick()).ok());
    ASSERT_TRUE(admin.DeleteQueue(queue).ok());
  }
  RunningConsumer consumer(address_, options, handler);  // we declare first
  ASSERT_TRUE(consumer.WaitConnected());
  std::string task_id = SendTask(queue, {{"id", 7}});  // the site's send_task declares it too
  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(ParseTaskMessage(received->delivery.props, received->delivery.body)->id, task_id);
  consumer->Ack(received->epoch, received->delivery.delivery_tag);
}

TEST_F(BrokerIntegration, WrongPasswordIsClearAndRetriedWithBackoff) {
  BrokerAddress wrong = address_;
  wrong.password = "not-the-password-" + suffix_;
  RecordingHandler handler;
  ConsumerOptions options = Options();
  options.reconnect_min = 100ms;
  options.reconnect_max = 400ms;
  auto started = std::chrono::steady_clock::now();
  {
    RunningConsumer consumer(wrong, options, handler);
    auto states = handler.States(3, 20s);
    ASSERT_GE(states.size(), 3u);
    for (const auto& [connected, detail] : states) {
      EXPECT_FALSE(connected);
      EXPECT_NE(detail.find("refused the login for user guest on vhost " + wrong.vhost),
                std::string::npos)
          << detail;
      EXPECT_EQ(detail.find(wrong.password), std::string::npos) << detail;
    }
    EXPECT_FALSE(consumer->connected());
  }
  // Three tries with waits of 100..400 ms: well under the broker's own delays.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);
}

TEST_F(BrokerIntegration, ReconnectsByItselfWhenTheBrokerClosesTheConnection) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  std::uint64_t epoch = consumer->epoch();

  CloseConnectionNamed(options.nodename);
  ASSERT_TRUE(consumer.WaitConnected(epoch + 1));
  auto states = handler.States(3, 5s);
  ASSERT_GE(states.size(), 3u);
  EXPECT_FALSE(states[1].first);
  EXPECT_NE(states[1].second.find("CONNECTION_FORCED"), std::string::npos) << states[1].second;
  EXPECT_TRUE(states[2].first);

  std::string task_id = SendTask(options.queue, {{"id", 3}});
  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->epoch, epoch + 1);
  EXPECT_EQ(ParseTaskMessage(received->delivery.props, received->delivery.body)->id, task_id);
  consumer->Ack(received->epoch, received->delivery.delivery_tag);
}

TEST_F(BrokerIntegration, AQueueDeletedUnderUsIsDeclaredAgain) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  std::uint64_t epoch = consumer->epoch();
  {
    AmqpClient admin;
    ASSERT_TRUE(admin.Connect(address_, Quick()).ok());
    ASSERT_TRUE(admin.DeleteQueue(options.queue).ok());
  }
  // The broker cancels our consumer (consumer_cancel_notify); we start over.
  ASSERT_TRUE(consumer.WaitConnected(epoch + 1));
  auto states = handler.States(2, 5s);
  ASSERT_GE(states.size(), 2u);
  EXPECT_NE(states[1].second.find("cancelled consumer"), std::string::npos) << states[1].second;
  std::string task_id = SendTask(options.queue, {{"id", 4}});
  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(ParseTaskMessage(received->delivery.props, received->delivery.body)->id, task_id);
}

TEST_F(BrokerIntegration, WorkerEventsReachCelerysEventState) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  consumer->SetActiveCount(1, 5);

  json seen = json::parse(Peer({"events", url_, options.nodename, "8"}));
  ASSERT_FALSE(seen["types"].empty()) << seen.dump();
  EXPECT_EQ(seen["types"].back(), "worker-heartbeat") << seen.dump();
  EXPECT_TRUE(seen["alive"].get<bool>()) << seen.dump();
  EXPECT_EQ(seen["last"]["active"], 1);
  EXPECT_EQ(seen["last"]["processed"], 5);
  EXPECT_EQ(seen["last"]["sw_ident"], "codabench-worker");
}

TEST_F(BrokerIntegration, AFailedReplyDoesNotTouchTheTaskChannel) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  std::string task_id = SendTask(options.queue, {{"id", 9}});
  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());

  // A reply exchange that exists as another type: our declare of it fails and
  // the broker closes the control channel.
  AmqpClient sender;
  ASSERT_TRUE(sender.Connect(address_, Quick()).ok());
  const std::string bad_exchange = "reply.bad." + suffix_;
  ASSERT_TRUE(sender.DeclareExchange({bad_exchange, "topic", true, true}).ok());
  MessageProperties props;
  props.content_type = "application/json";
  json ping = {{"method", "ping"},
               {"destination", {options.nodename}},
               {"ticket", "t-1"},
               {"reply_to", {{"exchange", bad_exchange}, {"routing_key", "k"}}}};
  ASSERT_TRUE(sender.Publish("celery.pidbox", "", ping.dump(), props).ok());
  ASSERT_TRUE(handler.NextControl("ping").has_value());

  // Remote control comes back by itself, on the same connection.
  CommandResult pong = RunCommand("/usr/bin/python3 -m celery --broker " + Quote(url_) +
                                  " inspect ping -d " + Quote(options.nodename) + " --timeout 5");
  EXPECT_NE(pong.output.find("pong"), std::string::npos) << pong.output;
  EXPECT_EQ(consumer->epoch(), received->epoch);
  // The job's delivery is still ours to ack.
  consumer->Ack(received->epoch, received->delivery.delivery_tag);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(consumer->epoch(), received->epoch);
  consumer.Stop();
  EXPECT_EQ(ReadyMessages(options.queue), 0u);
}

TEST_F(BrokerIntegration, SetPrefetchAppliesToTheNextDeliveries) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  for (int i = 0; i < 3; ++i) SendTask(options.queue, {{"id", i}});
  auto first = handler.NextDelivery();
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(handler.NextDelivery(1s).has_value());  // prefetch 1: one at a time

  consumer->SetPrefetch(3);
  auto second = handler.NextDelivery(5s);
  auto third = handler.NextDelivery(5s);
  EXPECT_TRUE(second.has_value());
  EXPECT_TRUE(third.has_value());
}

// AmqpClient on its own: errors a person can act on, and heartbeats.

TEST_F(BrokerIntegration, ClientSaysWhyADeclareIsRefused) {
  AmqpClient client;
  ASSERT_TRUE(client.Connect(address_, Quick()).ok());
  const std::string name = "q-" + suffix_;
  ASSERT_TRUE(client.DeclareQueue({name, true, false, false, {{"x-max-priority", 10}}}).ok());
  auto again = client.DeclareQueue({name, true, false, false, json::object()});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kInvalidInput);
  EXPECT_NE(again.status().message().find("already has it with other settings"), std::string::npos)
      << again.status().message();
  EXPECT_NE(again.status().message().find("x-max-priority"), std::string::npos);
  // Only that channel closed; the connection and a new channel work.
  EXPECT_TRUE(client.connected());
  EXPECT_FALSE(client.channel_open(1));
  ASSERT_TRUE(client.OpenChannel(3).ok());
  EXPECT_TRUE(client.DeleteQueue(name, 3).ok());
}

TEST_F(BrokerIntegration, ClientSaysWhenTheVhostIsNotThere) {
  BrokerAddress nowhere = address_;
  nowhere.vhost = "no-such-vhost-" + suffix_;
  AmqpClient client;
  Status st = client.Connect(nowhere, Quick());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("vhost " + nowhere.vhost), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("does not exist"), std::string::npos) << st.message();
}

TEST_F(BrokerIntegration, ClientSaysWhenNothingListens) {
  BrokerAddress closed = address_;
  closed.port = 1;  // nothing listens there
  AmqpClient client;
  Status st = client.Connect(closed, Quick());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("cannot reach the broker at"), std::string::npos) << st.message();
}

// TLS against `openssl s_server` with a self-signed certificate for
// "localhost": it speaks TLS but not AMQP, so a handshake that succeeds ends
// in a failed login, and one that is refused says why.
TEST_F(BrokerIntegration, TlsVerifiesPeerAndHostNameUnlessToldNot) {
  const std::string dir = "/tmp/cw-tls-" + suffix_;
  const int port = 20000 + static_cast<int>(std::stoul(suffix_, nullptr, 16) % 20000);
  CommandResult cert = RunCommand(
      "mkdir -p " + dir + " && cd " + dir +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1"
      " -subj /CN=localhost -addext subjectAltName=DNS:localhost"
      " && (timeout 30 openssl s_server -quiet -naccept 4 -accept " +
      std::to_string(port) + " -cert cert.pem -key key.pem >/dev/null 2>&1 &) && sleep 1");
  ASSERT_EQ(cert.exit_code, 0) << cert.output;

  auto connect = [&](const std::string& host, const std::string& ca_file, bool verify) {
    BrokerAddress tls = address_;
    tls.tls = true;
    tls.host = host;
    tls.port = port;
    ConnectOptions options = Quick();
    options.rpc_timeout = 2s;
    options.ca_file = ca_file;
    options.tls_verify = verify;
    AmqpClient client;
    return client.Connect(tls, options).message();
  };
  EXPECT_NE(connect("localhost", "", true).find("not signed by a CA we trust"), std::string::npos);
  EXPECT_NE(connect("127.0.0.1", dir + "/cert.pem", true).find("is not for 127.0.0.1"),
            std::string::npos);
  // The handshake passes; the login fails because s_server is no broker.
  EXPECT_NE(connect("localhost", dir + "/cert.pem", true).find("during the login"),
            std::string::npos);
  EXPECT_NE(connect("127.0.0.1", "", false).find("during the login"), std::string::npos);
  RunCommand("rm -rf " + dir);
}

TEST_F(BrokerIntegration, HeartbeatsKeepAnIdleConnectionAliveOnlyWhileWeKeepReading) {
  ConnectOptions options = Quick();
  options.heartbeat_s = 1;
  AmqpClient client;
  ASSERT_TRUE(client.Connect(address_, options).ok());
  auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    auto next = client.NextDelivery(100ms);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
  }
  EXPECT_TRUE(client.connected());

  // Silent for several heartbeat periods: the broker gives up on us, and the
  // next read says so instead of hanging.
  std::this_thread::sleep_for(5s);
  Status lost;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto next = client.NextDelivery(100ms);
    if (!next.ok()) {
      lost = next.status();
      break;
    }
  }
  EXPECT_EQ(lost.code(), Code::kUnavailable) << lost.ToString();
  EXPECT_FALSE(client.connected());
}

TEST_F(BrokerIntegration, AnAckLeavesAtOnceNotAtTheNextPoll) {
  // Prefetch 1: the broker sends the next message only once it has the ack,
  // so ack-to-next-delivery is the time the ack took to leave (plus a round
  // trip). It used to wait for the broker thread's 100 ms poll.
  RecordingHandler handler;
  ConsumerOptions options = Options();
  options.prefetch = 1;
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  constexpr int kTasks = 8;
  for (int i = 0; i < kTasks; ++i) SendTask(options.queue, json{{"id", i}});
  auto received = handler.NextDelivery();
  ASSERT_TRUE(received.has_value());
  std::vector<double> ms;
  for (int i = 1; i < kTasks; ++i) {
    std::this_thread::sleep_for(30ms);  // the broker thread is idle, waiting
    auto t0 = std::chrono::steady_clock::now();
    consumer->Ack(received->epoch, received->delivery.delivery_tag);
    received = handler.NextDelivery();
    ASSERT_TRUE(received.has_value()) << "delivery " << i;
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  consumer->Ack(received->epoch, received->delivery.delivery_tag);
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("ack to next delivery: median %.2f ms, max %.2f ms\n", median, ms.back());
  EXPECT_LT(median, 15.0);
  std::this_thread::sleep_for(300ms);
  consumer.Stop();
  EXPECT_EQ(ReadyMessages(options.queue), 0u);
}

TEST_F(BrokerIntegration, StopConsumingHandsTheQueueBackButKeepsThePidbox) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  SendTask(options.queue, json{{"id", 1}});
  auto held = handler.NextDelivery();
  ASSERT_TRUE(held.has_value());

  consumer->StopConsuming();
  std::this_thread::sleep_for(300ms);
  SendTask(options.queue, json{{"id", 2}});
  EXPECT_FALSE(handler.NextDelivery(2s).has_value()) << "a delivery after basic.cancel";
  EXPECT_EQ(ReadyMessages(options.queue), 1u);  // waiting for another worker

  // Remote control still answers, and the held message can still be acked.
  CommandResult ping = RunCommand("/usr/bin/python3 -m celery --broker " + Quote(url_) +
                                  " inspect ping -d " + Quote(options.nodename) + " --timeout 5");
  EXPECT_EQ(ping.exit_code, 0) << ping.output;
  EXPECT_NE(ping.output.find("pong"), std::string::npos) << ping.output;
  consumer->Ack(held->epoch, held->delivery.delivery_tag);
  std::this_thread::sleep_for(300ms);
  consumer.Stop();
  // Acked: only the second message is left, not requeued the first.
  EXPECT_EQ(ReadyMessages(options.queue), 1u);
}

TEST_F(BrokerIntegration, AckQueuedAsTheConsumerStopsStillLeaves) {
  RecordingHandler handler;
  ConsumerOptions options = Options();
  RunningConsumer consumer(address_, options, handler);
  ASSERT_TRUE(consumer.WaitConnected());
  SendTask(options.queue, json{{"id", 1}});
  auto held = handler.NextDelivery();
  ASSERT_TRUE(held.has_value());
  consumer->Ack(held->epoch, held->delivery.delivery_tag);
  consumer.Stop();  // at once: the last acks go out before the connection closes
  EXPECT_EQ(ReadyMessages(options.queue), 0u);
}

TEST_F(BrokerIntegration, HeartbeatsGoOutWhileWaitingOnAWakeFd) {
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(wake, 0);
  ConnectOptions options = Quick();
  options.heartbeat_s = 1;
  AmqpClient client;
  ASSERT_TRUE(client.Connect(address_, options).ok());
  auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) {
    auto next = client.NextDelivery(100ms, wake);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
  }
  EXPECT_TRUE(client.connected());
  // A write to the fd ends the wait at once.
  std::uint64_t one = 1;
  ASSERT_EQ(::write(wake, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  auto t0 = std::chrono::steady_clock::now();
  auto next = client.NextDelivery(5000ms, wake);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms);
  std::uint64_t count = 0;
  ASSERT_EQ(::read(wake, &count, sizeof count), static_cast<ssize_t>(sizeof count));

  // Silent for several heartbeat periods: a missed heartbeat is still noticed.
  std::this_thread::sleep_for(5s);
  Status lost;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = client.NextDelivery(100ms, wake);
    if (!n.ok()) {
      lost = n.status();
      break;
    }
  }
  EXPECT_EQ(lost.code(), Code::kUnavailable) << lost.ToString();
  EXPECT_FALSE(client.connected());
  ::close(wake);
}

}  // namespace
}  // namespace cw
