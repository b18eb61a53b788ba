#include "worker/status_text.h"

#include "common/log.h"

#include <fmt/format.h>

#include <ctime>
#include <vector>

namespace cw {

namespace {

// Every text shown goes through here: a reason may quote a zip entry's name,
// and the terminal must not act on what it holds.
std::string Str(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "?";
  const auto& v = j[key];
  if (v.is_string()) return EscapeControls(v.get<std::string>());
  if (v.is_null()) return "-";
  return v.dump();
}

double Num(const nlohmann::json& j, const char* key, double otherwise = -1) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return otherwise;
  return j[key].get<double>();
}

// "14:02:11", with the date in front when it is not the day of `now`.
std::string Clock(double unix, double now) {
  if (unix <= 0) return "?";
  std::time_t t = static_cast<std::time_t>(unix), n = static_cast<std::time_t>(now);
  std::tm tm{}, tn{};
  localtime_r(&t, &tm);
  localtime_r(&n, &tn);
  char buf[32];
  const char* format =
      tm.tm_yday == tn.tm_yday && tm.tm_year == tn.tm_year ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S";
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// Columns padded to their widest cell; the last one is not padded.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], width[i]) : row[i];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += "  " + line + "\n";
  }
  return out;
}

}  // namespace

std::string FormatDuration(double s) {
  if (s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const long long t = static_cast<long long>(s);
  if (t < 3600) return fmt::format("{}m {}s", t / 60, t % 60);
  if (t < 86400) return fmt::format("{}h {}m", t / 3600, t % 3600 / 60);
  return fmt::format("{}d {}h", t / 86400, t % 86400 / 3600);
}

std::string FormatStatus(const nlohmann::json& s) {
  const double now = Num(s, "now", static_cast<double>(std::time(nullptr)));
  std::string out =
      fmt::format("{}  codabench-worker {}  pid {}  up {}\n", Str(s, "node"), Str(s, "version"),
                  Str(s, "pid"), FormatDuration(Num(s, "uptime_s")));

  const nlohmann::json broker = s.value("broker", nlohmann::json::object());
  const double reconnects = Num(broker, "reconnects", 0);
  std::string broker_line = broker.value("connected", false) ? "connected" : "NOT connected";
  if (Num(broker, "since") > 0) broker_line += " since " + Clock(Num(broker, "since"), now);
  if (reconnects > 0) {
    broker_line += fmt::format(" ({} reconnect{})", reconnects, reconnects == 1 ? "" : "s");
  }
  const nlohmann::json engine = s.value("engine", nlohmann::json::object());
  std::string engine_line = "not checked yet";
  if (engine.contains("ok") && engine["ok"].is_boolean()) {
    engine_line = engine["ok"].get<bool>() ? "ok" : "NOT answering: " + Str(engine, "reason");
    if (Num(engine, "checked_at") > 0) {
      engine_line += " (checked " + FormatDuration(now - Num(engine, "checked_at")) + " ago)";
    }
  }
  out += Table(
      {{"broker", broker_line},
       {"engine", engine_line},
       {"draining", s.value("draining", false) ? "yes: no new jobs, running ones finish" : "no"},
       {"jobs", Str(s, "jobs_done") + " done since start"}});

  out += "\nslots\n";
  std::vector<std::vector<std::string>> rows = {{"slot", "gpus", "cpus", "now"}};
  for (const auto& slot : s.value("slots", nlohmann::json::array())) {
    std::string gpus;
    for (const auto& g : slot.value("gpus", nlohmann::json::array())) {
      gpus += (gpus.empty() ? "" : ", ") + (g.is_string() ? g.get<std::string>() : g.dump());
    }
    std::string cpus = slot.value("cpus", "");
    std::string now_doing = "idle";
    const auto& job = slot.contains("job") ? slot["job"] : nlohmann::json();
    if (job.is_object()) {
      std::string site_status = Str(job, "site_status");
      now_doing = fmt::format("submission {} {}{} for {} (since {}, task {})",
                              Str(job, "submission"), Str(job, "stage"),
                              site_status.empty() || site_status == "?" ? "" : ", " + site_status,
                              FormatDuration(Num(job, "running_s")),
                              Clock(Num(job, "started_at"), now), Str(job, "task_id"));
    }
    rows.push_back(
        {Str(slot, "slot"), gpus.empty() ? "-" : gpus, cpus.empty() ? "all" : cpus, now_doing});
  }
  out += Table(rows);

  const auto last = s.value("last_jobs", nlohmann::json::array());
  out += fmt::format("\nlast jobs{}\n", last.empty() ? ": none yet" : " (newest first)");
  if (!last.empty()) {
    rows = {{"ended", "submission", "stage", "slot", "outcome", "took", "reason"}};
    for (const auto& j : last) {
      rows.push_back({Clock(Num(j, "ended_at"), now), Str(j, "submission"), Str(j, "stage"),
                      Str(j, "slot"), Str(j, "outcome"), FormatDuration(Num(j, "duration_s")),
                      j.contains("reason") ? Str(j, "reason") : std::string()});
    }
    out += Table(rows);
  }
  return out;
}

}  // namespace cw
