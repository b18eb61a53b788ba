#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

namespace cw {
namespace {

thread_local LogFields t_fields;

// loguru's level names and numbers.
std::pair<const char*, int> LevelOf(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return {"TRACE", 5};
    case spdlog::level::debug: return {"DEBUG", 10};
    case spdlog::level::info: return {"INFO", 20};
    case spdlog::level::warn: return {"WARNING", 30};
    case spdlog::level::err: return {"ERROR", 40};
    case spdlog::level::critical: return {"CRITICAL", 50};
    default: return {"INFO", 20};
  }
}

// "2026-11-30 06:45:01.123456+00:00", as loguru's repr of the time.
std::string TimeRepr(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[64];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%06lld+00:00", static_cast<long long>(us % 1000000));
  return text;
}

class JsonLogFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using nlohmann::json;
    const std::string message(msg.payload.data(), msg.payload.size());
    auto [level_name, level_no] = LevelOf(msg.level);
    const std::string time = TimeRepr(msg.time);
    json extra = json::object();
    const LogFields& f = t_fields;
    if (f.submission >= 0) extra["submission"] = f.submission;
    if (!f.stage.empty()) extra["stage"] = f.stage;
    if (f.slot >= 0) extra["slot"] = f.slot;
    if (!f.task_id.empty()) extra["task_id"] = f.task_id;
    const double timestamp =
        std::chrono::duration<double>(msg.time.time_since_epoch()).count();
    json line = {
        {"text", time + " | " + level_name + " | " + message + "\n"},
        {"record",
         {{"time", {{"repr", time}, {"timestamp", timestamp}}},
          {"level", {{"name", level_name}, {"no", level_no}}},
          {"message", message},
          {"extra", extra},
          {"name", std::string(msg.logger_name.data(), msg.logger_name.size())},
          {"process", {{"id", static_cast<long long>(::getpid())}, {"name", "codabench-worker"}}},
          {"thread", {{"id", static_cast<unsigned long long>(msg.thread_id)}}}}}};
    std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace);
    text.push_back('\n');
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLogFormatter>();
  }
};

// %* in a pattern: the message, through EscapeControls.
class EscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const std::string text = EscapeControls(payload);
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

}  // namespace

std::string EscapeControls(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      const auto c1 = static_cast<unsigned char>(text[++i]);
      out += "\\u00";
      out.push_back(kHex[c1 >> 4]);
      out.push_back(kHex[c1 & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

const LogFields& CurrentLogFields() { return t_fields; }

ScopedLogFields::ScopedLogFields(LogFields fields) : saved_(std::move(t_fields)) {
  t_fields = std::move(fields);
}

ScopedLogFields::~ScopedLogFields() { t_fields = std::move(saved_); }

std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter() {
  return std::make_unique<JsonLogFormatter>();
}

void ConfigureLogging(bool json, const std::string& level) {
  if (json) {
    spdlog::set_formatter(MakeJsonLogFormatter());
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<EscapedMessage>('*').set_pattern("%^[%H:%M:%S %l]%$ %*");
    spdlog::set_formatter(std::move(formatter));
  }
  std::string lower = level;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "warning") lower = "warn";
  if (lower == "error") lower = "err";
  auto parsed = spdlog::level::from_str(lower);
  // from_str answers "off" for a name it does not know.
  if (parsed == spdlog::level::off && lower != "off") parsed = spdlog::level::info;
  spdlog::set_level(parsed);
}

}  // namespace cw
