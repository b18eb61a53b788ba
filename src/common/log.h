// The worker's own log: text on stderr, or one JSON object per line when the
// admin sets SERIALIZED=true (the Python worker's switch), each line carrying
// the fields of the job the logging thread works for.
//
// Thread-safety: the fields are per thread (ScopedLogFields); logging is
// spdlog's, safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace cw {

// What a log line says about the job behind it (empty outside jobs).
struct LogFields {
  long long submission = -1;
  std::string stage;    // "prediction" / "scoring"
  int slot = -1;
  std::string task_id;  // the Celery task id
};

// This thread's fields.
const LogFields& CurrentLogFields();

// Sets this thread's fields for its lifetime, then puts the old ones back.
// A thread a job starts takes its parent's: pass CurrentLogFields() along.
class ScopedLogFields {
 public:
  explicit ScopedLogFields(LogFields fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  LogFields saved_;
};

// One line of JSON per message, in the shape of loguru's `serialize=True`
// (what Codabench's Python worker writes with SERIALIZED): {"text": "...",
// "record": {"time": {"repr", "timestamp"}, "level": {"name", "no"},
// "message", "extra": {submission, stage, slot, task_id}, "process",
// "thread", "name"}}. Invalid UTF-8 in a message is replaced, never dropped.
std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter();

// `text` with every control character a terminal acts on (C0 but the tab,
// DEL, and C1 written as UTF-8) shown as an escape (\x1b, \n, \u009b), so a
// zip entry name or a program's words cannot move the cursor, recolour or
// forge lines in a terminal or a plain-text log. Other bytes are kept.
std::string EscapeControls(std::string_view text);

// Sets the default logger's format (JSON or text) and level ("info",
// "DEBUG", "warning", ...; an unknown level keeps info). Text lines pass
// their message through EscapeControls; JSON escapes it as JSON does.
void ConfigureLogging(bool json, const std::string& level);

}  // namespace cw
