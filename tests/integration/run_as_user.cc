// CW_TEST_RUN_AS=<user>: the integration tests run as that user, as a worker
// beside rootless Podman does (tests/integration/CMakeLists.txt registers the
// engine tests so, against the user's own podman socket). Started as root,
// the binary drops to the user before main (before gtest starts, so before
// any thread): its groups, gid and uid, HOME, and XDG_RUNTIME_DIR
// (/run/user/<uid>, where scripts/start-podman puts the user's socket);
// CONTAINER_SOCKET, when not set, becomes the socket there. A user that does
// not exist is left to the tests, which skip saying so (RunAsUserMissing()).
//
// Threads: runs once, during static initialisation, on the main thread.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "run_as_user.h"

namespace {

bool DropToUser() {
  const char* name = std::getenv("CW_TEST_RUN_AS");
  if (name == nullptr || *name == '\0') return true;
  const passwd* pw = getpwnam(name);
  if (pw == nullptr) return false;
  const std::string runtime_dir = "/run/user/" + std::to_string(pw->pw_uid);
  setenv("HOME", pw->pw_dir, 1);
  setenv("USER", pw->pw_name, 1);
  setenv("XDG_RUNTIME_DIR", runtime_dir.c_str(), 1);
  if (const char* sock = std::getenv("CONTAINER_SOCKET"); sock == nullptr || *sock == '\0') {
    setenv("CONTAINER_SOCKET", ("unix://" + runtime_dir + "/podman/podman.sock").c_str(), 1);
  }
  if (getuid() == pw->pw_uid) return true;
  if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0) {
    std::perror("CW_TEST_RUN_AS: cannot become the user (run the tests as root)");
    std::exit(1);
  }
  return true;
}

const bool dropped = DropToUser();

}  // namespace

namespace cw {

std::string RunAsUserMissing() {
  const char* name = std::getenv("CW_TEST_RUN_AS");
  return dropped || name == nullptr ? std::string() : std::string(name);
}

}  // namespace cw
