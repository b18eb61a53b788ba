#include "worker/remote_control.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <vector>

namespace cw {

nlohmann::json RemoteControl::Answer(const ControlMessage& message) {
  const std::string& m = message.method;
  if (m == "ping") return {{"ok", "pong"}};
  if (m == "revoke") return Revoke(message.arguments);
  if (m == "active") return Active();
  if (m == "registered") return nlohmann::json::array({"compute_worker_run"});
  if (m == "revoked") return nlohmann::json(ledger_.RevokedIds());
  if (m == "stats") {
    return {{"pid", static_cast<long long>(getpid())},
            {"pool", {{"max-concurrency", slots_}, {"implementation", "codabench-worker"}}},
            {"total", {{"compute_worker_run", ledger_.processed()}}},
            {"active", ledger_.active()}};
  }
  if (m == "active_queues") {
    return nlohmann::json::array({{{"name", "compute-worker"},
                                   {"exchange", {{"name", "compute-worker"}, {"type", "direct"}}},
                                   {"routing_key", "compute-worker"},
                                   {"durable", true},
                                   {"queue_arguments", {{"x-max-priority", 10}}}}});
  }
  spdlog::debug("ignoring remote control command {}", m);
  return {{"error", "unknown command: " + m}};
}

nlohmann::json RemoteControl::Revoke(const nlohmann::json& arguments) {
  std::vector<std::string> ids;
  const auto& task_id = arguments.contains("task_id") ? arguments["task_id"] : nlohmann::json();
  if (task_id.is_string()) ids.push_back(task_id.get<std::string>());
  if (task_id.is_array()) {
    for (const auto& t : task_id) {
      if (t.is_string()) ids.push_back(t.get<std::string>());
    }
  }
  ledger_.Revoke(ids, arguments.value("terminate", false));
  std::string joined;
  for (const auto& id : ids) joined += (joined.empty() ? "" : ", ") + id;
  return {{"ok", "tasks " + joined + " flagged as revoked"}};
}

nlohmann::json RemoteControl::Active() const {
  nlohmann::json out = nlohmann::json::array();
  for (const RunningJobView& job : ledger_.Running()) {
    nlohmann::json redacted = job.raw_args;
    // `inspect active` output ends up in people's terminals: no secrets.
    if (redacted.is_object()) {
      for (auto& [k, v] : redacted.items()) {
        if (k == "secret" ||
            (v.is_string() && v.get<std::string>().find('?') != std::string::npos)) {
          v = "<redacted>";
        }
      }
    }
    out.push_back({{"id", job.task_id},
                   {"name", "compute_worker_run"},
                   {"args", nlohmann::json::array({redacted})},
                   {"kwargs", nlohmann::json::object()},
                   {"type", "compute_worker_run"},
                   {"hostname", nodename_},
                   {"time_start", job.started_unix},
                   {"acknowledged", false},
                   {"delivery_info",
                    {{"exchange", "compute-worker"},
                     {"routing_key", "compute-worker"},
                     {"priority", job.is_scoring ? 10 : 0},
                     {"redelivered", job.redelivered}}},
                   {"worker_pid", static_cast<long long>(getpid())},
                   {"worker_slot", job.slot}});
  }
  return out;
}

}  // namespace cw
