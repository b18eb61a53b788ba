// One program of a job, from its created container to its end: started,
// its output streamed (to its ProgramOutput), its exit code waited for, and
// whether the kernel's OOM killer stopped it. The container is created, and
// killed or removed, by the job (job_runner.cc); the run only runs it.
//
// Thread rules: the constructor, Start, Join and the accessors marked
// "after Join" belong to the owner's thread (the job's). Start runs the
// program on a thread of the run's own, which alone writes outcome_,
// oom_killed_, error_ and the output, and sets running_ then done_
// (atomics, which any thread may read) and calls `changed` on each. The
// destructor joins a thread still running: the owner kills or removes the
// container first, which ends the stream.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "engine/engine.h"
#include "job/cancel.h"
#include "job/program_exit.h"
#include "job/program_output.h"
#include "job/watchers.h"

namespace cw {

class ProgramRun {
 public:
  ProgramRun(ProgramKind kind, std::string label, std::string container_id,
             std::unique_ptr<ProgramOutput> output, std::string stdout_url,
             std::string stderr_url);
  ~ProgramRun() { Join(); }
  ProgramRun(const ProgramRun&) = delete;
  ProgramRun& operator=(const ProgramRun&) = delete;

  // `nofile_limit` is the admin's CONTAINER_NOFILE_LIMIT, for the message
  // when the engine refuses it. An exception on the run's thread becomes the
  // run's error.
  void Start(ContainerEngine& engine, const CancelToken& cancel, long long nofile_limit,
             long long submission, std::function<void()> changed);
  void Join();

  bool running() const { return running_; }  // it started (it may have ended since)
  bool done() const { return done_; }
  ProgramKind kind() const { return kind_; }
  const std::string& label() const { return label_; }
  const std::string& container_id() const { return container_id_; }
  // For the usage sampler, while it runs.
  UsageTarget usage_target() { return {container_id_, &running_, &done_, &usage_}; }

  // After Join: how it ended, with what it used.
  ProgramEnd End() const;
  const ProgramOutput& output() const { return *output_; }
  const std::string& stdout_url() const { return stdout_url_; }
  const std::string& stderr_url() const { return stderr_url_; }

 private:
  void Run(ContainerEngine& engine, const CancelToken& cancel, long long nofile_limit,
           long long submission, const std::function<void()>& changed);  // on thread_

  const ProgramKind kind_;
  const std::string label_;  // "submission", "scoring program", "ingestion program"
  const std::string container_id_;
  const std::unique_ptr<ProgramOutput> output_;
  const std::string stdout_url_, stderr_url_;
  ProgramUsage usage_;
  std::atomic<bool> running_{false};
  std::atomic<bool> done_{false};
  // Written by thread_ only; read after its join.
  ProgramOutcome outcome_;
  bool oom_killed_ = false;
  Status error_;
  std::thread thread_;
};

}  // namespace cw
