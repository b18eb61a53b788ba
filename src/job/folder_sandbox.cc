#include "job/folder_sandbox.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "job/container_spec.h"
#include "sandbox/sandbox_image.h"

namespace cw {
namespace fs = std::filesystem;

FolderSandbox SandboxFor(const JobEnvironment& env, ContainerEngine& engine) {
  FolderSandbox s;
  s.engine = &engine;
  s.image = env.sandbox_image;
  s.base_dir = env.base_dir;
  s.host_dir = env.host_dir;
  s.labels = env.labels;
  return s;
}

Result<std::string> RunSandbox(const FolderSandbox& sandbox, const std::string& verb,
                               const fs::path& folder) {
  if (!sandbox.usable()) return Unavailable("the worker's own image is not in the engine");
  ContainerSpec spec;
  spec.image = sandbox.image;
  spec.cmd = {kSandboxProgram, verb, "/target"};
  spec.labels = sandbox.labels;
  spec.labels[kLabelWorker] = "codabench-worker";
  spec.labels[kLabelKind] = "folder-" + verb;
  spec.mounts = {{ToHostPath(folder, sandbox.base_dir, sandbox.host_dir).string(), "/target",
                  verb != "remove"}};
  spec.network_disabled = true;
  spec.security_opt = {"no-new-privileges"};
  spec.pids_limit = 8;
  spec.memory_bytes = 64ll << 20;
  spec.log_driver = "none";
  ContainerEngine& engine = *sandbox.engine;
  CW_ASSIGN_OR_RETURN(std::string id, engine.Create(spec));
  // A folder of millions of files may take long; past the time limit the
  // container is killed, which ends its output stream.
  std::mutex mu;
  std::condition_variable cv;
  bool ended = false;  // guarded by mu
  std::thread limit([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, sandbox.timeout, [&] { return ended; })) (void)engine.Kill(id);
  });
  std::string out, err;
  Status streamed = engine.StartAndStream(
      id,
      [&](StreamKind kind, std::string_view chunk) {
        std::string& into = kind == StreamKind::kStdout ? out : err;
        if (into.size() < 4096) into.append(chunk.substr(0, 4096 - into.size()));
      },
      {});
  Result<int> code = streamed.ok() ? engine.Wait(id, std::chrono::seconds(60)) : Result<int>(streamed);
  {
    std::lock_guard<std::mutex> lock(mu);
    ended = true;
  }
  cv.notify_all();
  limit.join();
  (void)engine.Remove(id, true);
  if (!code.ok()) return code.status().Prefixed("the worker's own image could not " + verb + " " + folder.string());
  if (*code != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return IoError("the worker's own image could not " + verb + " " + folder.string() +
                   " (exit code " + std::to_string(*code) + "): " + err);
  }
  return out;
}

Result<std::uint64_t> SandboxSize(const FolderSandbox& sandbox, const fs::path& folder) {
  CW_ASSIGN_OR_RETURN(std::string out, RunSandbox(sandbox, "size", folder));
  try {
    return static_cast<std::uint64_t>(std::stoull(out));
  } catch (const std::exception&) {
    return Internal("the worker's own image sized " + folder.string() + " as '" + out + "'");
  }
}

}  // namespace cw
