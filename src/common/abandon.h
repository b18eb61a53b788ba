// Lets the thread running a job stop waiting on the outside world once the
// job is revoked: the worker opens a scope around each job with a predicate
// ("revoked?"), and code far below the pipeline (the HTTP client's retries
// and transfers) asks Abandoned() instead of needing a token passed down.
// Without a scope on the thread nothing is ever abandoned.
#pragma once

#include <functional>

namespace cw {

class AbandonScope {
 public:
  explicit AbandonScope(std::function<bool()> abandoned);
  ~AbandonScope();  // the thread's previous scope, if any, applies again
  AbandonScope(const AbandonScope&) = delete;
  AbandonScope& operator=(const AbandonScope&) = delete;

  // True when this thread is inside a scope whose predicate says so.
  static bool Abandoned();
  // True when this thread is inside a scope at all.
  static bool Active();

 private:
  std::function<bool()> abandoned_;
  AbandonScope* previous_;
};

}  // namespace cw
