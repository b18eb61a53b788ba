#include "job/program_run.h"

#include <exception>

#include <spdlog/spdlog.h>

#include "common/log.h"

namespace cw {
using Clock = std::chrono::steady_clock;

ProgramRun::ProgramRun(ProgramKind kind, std::string label, std::string container_id,
                       std::unique_ptr<ProgramOutput> output, std::string stdout_url,
                       std::string stderr_url)
    : kind_(kind), label_(std::move(label)), container_id_(std::move(container_id)),
      output_(std::move(output)), stdout_url_(std::move(stdout_url)),
      stderr_url_(std::move(stderr_url)) {}

void ProgramRun::Start(ContainerEngine& engine, const CancelToken& cancel, long long nofile_limit,
                       long long submission, std::function<void()> changed) {
  const LogFields fields = CurrentLogFields();  // the job's, for the thread's lines
  // An exception must not leave a thread of ours: it would end the process.
  thread_ = std::thread([this, &engine, &cancel, nofile_limit, submission,
                         changed = std::move(changed), fields] {
    ScopedLogFields scoped(fields);
    try {
      Run(engine, cancel, nofile_limit, submission, changed);
    } catch (const std::exception& e) {
      error_ = Internal("The worker hit an internal error while running the " + label_ + ": " +
                        e.what());
      done_ = true;
      changed();
    } catch (...) {
      error_ = Internal("The worker hit an internal error while running the " + label_ +
                        ": an unknown exception");
      done_ = true;
      changed();
    }
  });
}

void ProgramRun::Join() {
  if (thread_.joinable()) thread_.join();
}

void ProgramRun::Run(ContainerEngine& engine, const CancelToken& cancel, long long nofile_limit,
                     long long submission, const std::function<void()>& changed) {
  const auto started = Clock::now();
  Clock::time_point running_since;  // valid once running_ is set
  auto on_output = [this](StreamKind stream, std::string_view data) {
    output_->Write(stream, data);
  };
  auto on_started = [&] {
    running_since = Clock::now();
    running_ = true;
    changed();
  };
  Status streamed = engine.StartAndStream(container_id_, on_output, on_started);
  if (!streamed.ok()) {
    error_ = streamed.Prefixed("The " + label_ + " could not run");
    // runc's words for a limit above the engine's own: the admin's to fix.
    if (streamed.message().find("error setting rlimit type 7") != std::string::npos) {
      error_ = Status(Code::kUnavailable,
                      "The " + label_ + " could not start: this worker's CONTAINER_NOFILE_LIMIT (" +
                          std::to_string(nofile_limit) +
                          ") is above its container engine's own open-file limit; the worker's "
                          "admin must lower it");
    }
  }
  auto code = engine.Wait(container_id_, std::chrono::seconds(60));
  if (code.ok()) {
    outcome_.exit_code = *code;
    if (*code != 0 && !cancel.cancelled()) {
      // Only the engine knows whether the kernel's OOM killer stopped it.
      auto state = engine.Inspect(container_id_, false);
      if (state.ok()) {
        oom_killed_ = state->oom_killed;
      } else {
        spdlog::warn("{}: cannot inspect the {}'s container: {}", submission, label_,
                     state.status().ToString());
      }
    }
  } else if (error_.ok()) {
    error_ = code.status().Prefixed("The " + label_ + " did not report an exit code");
  }
  outcome_.elapsed_seconds =
      std::chrono::duration<double>(Clock::now() - (running_ ? running_since : started)).count();
  output_->Close();
  done_ = true;
  changed();
}

ProgramEnd ProgramRun::End() const {
  ProgramEnd end{kind_, label_, outcome_, oom_killed_, error_};
  usage_.Into(end.outcome);
  return end;
}

}  // namespace cw
