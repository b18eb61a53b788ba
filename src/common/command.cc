#include "common/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace cw {
namespace {

constexpr std::size_t kMaxOutput = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

int ExitCode(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

int WaitFor(pid_t pid) {
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  return wstatus;
}

// A child may close its output and still linger; the time limit holds for
// that too. Returns false when the deadline passed (the child is then killed).
bool WaitUntil(pid_t pid, std::chrono::steady_clock::time_point deadline, int& wstatus) {
  for (;;) {
    pid_t done = waitpid(pid, &wstatus, WNOHANG);
    if (done == pid) return true;
    if (done < 0 && errno != EINTR) return true;  // not our child any more: nothing to wait for
    if (std::chrono::steady_clock::now() >= deadline) break;
    usleep(10 * 1000);
  }
  kill(pid, SIGKILL);
  WaitFor(pid);
  return false;
}

}  // namespace

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  if (argv.empty()) return Internal("RunCommand needs a program to run");
  int fds[2];
  // O_CLOEXEC: a worker thread spawning its own child at the same moment must
  // not inherit this pipe, or our read would wait for that child too.
  if (pipe2(fds, O_CLOEXEC) != 0) return IoError(std::string("pipe: ") + std::strerror(errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child starts with no blocked signals and SIGPIPE at its default, as
  // from a shell: the worker's own signal setup is no business of nvidia-smi.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  write_end.Reset();  // so the read sees EOF when the child exits
  if (rc == ENOENT) return NotFound(argv[0] + " is not installed (not found in PATH)");
  if (rc != 0) return Unavailable("could not run " + argv[0] + ": " + std::strerror(rc));

  CommandOutput out;
  const std::string timeout_message =
      argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms and was killed";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      WaitFor(pid);
      return Timeout(timeout_message);
    }
    pollfd p{read_end.get(), POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready == 0 || (ready < 0 && errno == EINTR)) continue;  // the deadline check ends it
    if (ready < 0) {
      const int err = errno;
      kill(pid, SIGKILL);
      WaitFor(pid);
      return IoError("reading the output of " + argv[0] + ": " + std::strerror(err));
    }
    ssize_t n = read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF (or an error): the child closed its output
    std::size_t room = kMaxOutput - out.output.size();
    out.output.append(buf, std::min(room, static_cast<std::size_t>(n)));
  }
  int wstatus = 0;
  if (!WaitUntil(pid, deadline, wstatus)) return Timeout(timeout_message);
  out.exit_code = ExitCode(wstatus);
  return out;
}

}  // namespace cw
