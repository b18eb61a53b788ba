#include "common/log.h"

#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace cw {
namespace {

// One logger writing JSON lines into a string.
struct JsonLog {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  JsonLog() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    logger = std::make_shared<spdlog::logger>("codabench-worker", sink);
    logger->set_formatter(MakeJsonLogFormatter());
    logger->set_level(spdlog::level::trace);
  }
  nlohmann::json Line() {
    logger->flush();
    std::string text = out.str();
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    out.str("");
    return nlohmann::json::parse(text);
  }
};

TEST(JsonLog, OneObjectPerLineInLogurusShape) {
  JsonLog log;
  log.logger->warn("slot {}: disk almost full", 2);
  nlohmann::json line = log.Line();
  const auto& record = line.at("record");
  EXPECT_EQ(record.at("message"), "slot 2: disk almost full");
  EXPECT_EQ(record.at("level").at("name"), "WARNING");
  EXPECT_EQ(record.at("level").at("no"), 30);
  EXPECT_TRUE(record.at("time").at("timestamp").is_number());
  EXPECT_NE(record.at("time").at("repr").get<std::string>().find("+00:00"), std::string::npos);
  EXPECT_EQ(record.at("extra"), nlohmann::json::object());  // no job on this thread
  EXPECT_NE(line.at("text").get<std::string>().find("WARNING | slot 2: disk almost full"),
            std::string::npos);
}

TEST(JsonLog, CarriesTheJobsFieldsOfTheLoggingThread) {
  JsonLog log;
  {
    ScopedLogFields fields({42, "scoring", 1, "task-abc"});
    log.logger->info("job starts");
  }
  nlohmann::json extra = log.Line().at("record").at("extra");
  EXPECT_EQ(extra, nlohmann::json({{"submission", 42}, {"stage", "scoring"}, {"slot", 1},
                                   {"task_id", "task-abc"}}));
  log.logger->info("between jobs");
  EXPECT_EQ(log.Line().at("record").at("extra"), nlohmann::json::object());
}

TEST(JsonLog, InvalidUtf8IsReplacedNotLost) {
  JsonLog log;
  log.logger->error("program said \xff\xfe then {}", "more");
  nlohmann::json line = log.Line();
  std::string message = line.at("record").at("message");
  EXPECT_NE(message.find("then more"), std::string::npos);
  EXPECT_EQ(message.find('\xff'), std::string::npos);
}

TEST(JsonLog, ConfigureLoggingTakesPythonStyleLevelNames) {
  ConfigureLogging(false, "WARNING");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  ConfigureLogging(false, "DEBUG");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::debug);
  ConfigureLogging(false, "nonsense");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
}

TEST(TextLog, EscapeControls) {
  EXPECT_EQ(EscapeControls("plain text, tab\tkept, ünïcode"), "plain text, tab\tkept, ünïcode");
  EXPECT_EQ(EscapeControls("a\x1b[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(EscapeControls("line\n[12:00:00 info] forged"), "line\\n[12:00:00 info] forged");
  EXPECT_EQ(EscapeControls("cr\rover"), "cr\\rover");
  EXPECT_EQ(EscapeControls(std::string("nul\0bell\a\x7f", 10)), "nul\\x00bell\\x07\\x7f");
  EXPECT_EQ(EscapeControls("c1 \xc2\x9b" "31m"), "c1 \\u009b31m");  // CSI as UTF-8
  EXPECT_EQ(EscapeControls("\xc2\xa0nbsp"), "\xc2\xa0nbsp");      // not a control
}

// A zip entry's name in a failure reason cannot drive the admin's terminal.
TEST(TextLog, TextLinesEscapeTheMessage) {
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>(
      "text-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  ConfigureLogging(false, "info");
  spdlog::warn("cannot unpack 'evil\x1b]0;owned\x07\nname.txt'");
  logger->flush();
  spdlog::set_default_logger(previous);
  ConfigureLogging(false, "info");
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("cannot unpack 'evil\\x1b]0;owned\\x07\\nname.txt'"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace cw
