// Status and Result<T>: how every failure travels in the worker, with a message
// written for the person who has to act on it (participant, organizer or admin).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cw {

enum class Code {
  kOk = 0,
  kInvalidInput,   // the participant's or organizer's input is wrong (bad zip, no command, ...)
  kNotFound,       // a file, image, container or URL that is not there
  kAlreadyExists,  // a name is taken (a container name in the engine)
  kTimeout,        // a time limit was passed
  kCancelled,      // the job was cancelled (revoke, shutdown)
  kUnavailable,    // a server or engine could not be reached; may work later
  kPermissionDenied,
  kIo,             // local disk trouble
  kInternal,       // a bug or an engine answer we do not understand
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: image foo:1 is not on this machine"
  std::string ToString() const;

  // Adds context in front of the message: "fetching input_data: <message>".
  Status Prefixed(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidInput(std::string m) { return Status(Code::kInvalidInput, std::move(m)); }
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
inline Status Timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
inline Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status PermissionDenied(std::string m) {
  return Status(Code::kPermissionDenied, std::move(m));
}
inline Status IoError(std::string m) { return Status(Code::kIo, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "a Result made from a Status must carry an error");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  // The value, or `fallback` on error (tests, and callers for whom an error
  // and an empty value mean the same).
  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace cw

// Early return on error, for functions returning Status or Result<T>.
#define CW_RETURN_IF_ERROR(expr)           \
  do {                                     \
    ::cw::Status _cw_status = (expr);      \
    if (!_cw_status.ok()) return _cw_status; \
  } while (0)

#define CW_CONCAT_INNER(a, b) a##b
#define CW_CONCAT(a, b) CW_CONCAT_INNER(a, b)
#define CW_ASSIGN_OR_RETURN(lhs, expr) CW_ASSIGN_OR_RETURN_IMPL(CW_CONCAT(_cw_result_, __LINE__), lhs, expr)
#define CW_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
