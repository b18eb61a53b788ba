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
  // As above, and abandoned too whenever `also` says so: the scope of the
  // thread that started this one, which must outlive it.
  AbandonScope(std::function<bool()> abandoned, const AbandonScope* also);
  ~AbandonScope();  // the thread's previous scope, if any, applies again
  AbandonScope(const AbandonScope&) = delete;
  AbandonScope& operator=(const AbandonScope&) = delete;

  // True when this thread is inside a scope whose predicate says so.
  static bool Abandoned();
  // True when this thread is inside a scope at all.
  static bool Active();
  // This thread's scope, or nullptr: for a thread it starts (see above).
  static const AbandonScope* Current();

 private:
  bool Says() const;

  std::function<bool()> abandoned_;
  const AbandonScope* also_ = nullptr;
  AbandonScope* previous_;
};

}  // namespace cw
