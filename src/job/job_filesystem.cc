#include "job/job_filesystem.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/command.h"
#include "common/fd.h"
#include "common/files.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMargin = 256ull << 20;  // the filesystem's own tables
constexpr int kBundles = 5;  // program, ingestion program, input data, reference data, prediction

// Attaches `file` to a free loop device that detaches itself once nothing
// uses it (after the unmount). The device's path; `loop` holds it open
// until the caller has mounted it.
Result<std::string> AttachLoop(int file, Fd& loop) {
  Fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (control.get() < 0) return Unavailable("cannot open /dev/loop-control: " + ErrnoText(errno));
  for (int attempt = 0; attempt < 8; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return Unavailable("no free loop device: " + ErrnoText(errno));
    const std::string dev = "/dev/loop" + std::to_string(n);
    Fd fd(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (fd.get() < 0) return Unavailable("cannot open " + dev + ": " + ErrnoText(errno));
    loop_config config{};
    config.fd = static_cast<__u32>(file);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(fd.get(), LOOP_CONFIGURE, &config) == 0) {
      loop = std::move(fd);
      return dev;
    }
    if (errno == EBUSY) continue;  // another process took it first
    if (errno != EINVAL && errno != ENOTTY) {
      return Unavailable("cannot attach a loop device: " + ErrnoText(errno));
    }
    // A kernel before 5.8: the two-step way.
    if (::ioctl(fd.get(), LOOP_SET_FD, file) != 0) {
      if (errno == EBUSY) continue;
      return Unavailable("cannot attach a loop device: " + ErrnoText(errno));
    }
    loop_info64 info{};
    info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(fd.get(), LOOP_SET_STATUS64, &info) != 0) {
      int err = errno;
      ::ioctl(fd.get(), LOOP_CLR_FD, 0);
      return Unavailable("cannot set up " + dev + ": " + ErrnoText(err));
    }
    loop = std::move(fd);
    return dev;
  }
  return Unavailable("no free loop device (all taken while trying)");
}

// /proc/self/mountinfo writes a space as \040 and so on.
std::string Unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 && std::all_of(oct.begin(), oct.end(),
                                         [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>(std::stoi(oct, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string MountNamespace(const fs::path& proc) {
  std::error_code ec;
  fs::path target = fs::read_symlink(proc / "ns" / "mnt", ec);
  return ec ? std::string() : target.string();
}

// The mount namespace of the process serving the engine's unix socket (the
// daemon, or what listens for it), from the socket's peer credentials; ""
// when it cannot be told (another kind of address, a process out of sight).
std::string EngineMountNamespace(const std::string& socket_url) {
  std::string path = socket_url;
  if (path.rfind("unix://", 0) == 0) path = path.substr(7);
  if (path.empty() || path.front() != '/') return "";
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return "";
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return "";
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return "";
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.pid <= 0) {
    return "";
  }
  return MountNamespace(fs::path("/proc") / std::to_string(peer.pid));
}

}  // namespace

std::uint64_t JobFilesystemBytes(const JobLimits& limits, std::uint64_t host_free_bytes) {
  std::uint64_t room = host_free_bytes > limits.min_free_bytes
                           ? host_free_bytes - limits.min_free_bytes
                           : 0;
  if (limits.max_unpacked_bytes != 0) room = std::min(room, kBundles * limits.max_unpacked_bytes);
  return limits.max_output_bytes + room + kMargin;
}

Status MountJobFilesystem(const fs::path& image, const fs::path& mount_point,
                          std::uint64_t bytes) {
  {
    Fd file(::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (file.get() < 0) return IoError("cannot create " + image.string() + ": " + ErrnoText(errno));
    if (::ftruncate(file.get(), static_cast<off_t>(bytes)) != 0) {
      return IoError("cannot size " + image.string() + ": " + ErrnoText(errno));
    }
  }
  // No journal (the filesystem never outlives a crash of the worker), no
  // reserve for root, inode tables left for the kernel to zero only when
  // used (noinit_itable below: the image stays sparse).
  CW_ASSIGN_OR_RETURN(CommandOutput mkfs,
                      RunCommand({"mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E",
                                  "nodiscard,lazy_itable_init=1", image.string()},
                                 std::chrono::seconds(60)));
  if (mkfs.exit_code != 0) {
    return Unavailable("mkfs.ext4 " + image.string() + " exited with code " +
                       std::to_string(mkfs.exit_code) + ": " + mkfs.output);
  }
  std::error_code ec;
  fs::create_directories(mount_point, ec);
  if (ec) return IoError("cannot create " + mount_point.string() + ": " + ec.message());
  Fd file(::open(image.c_str(), O_RDWR | O_CLOEXEC));
  if (file.get() < 0) return IoError("cannot open " + image.string() + ": " + ErrnoText(errno));
  Fd loop(-1);
  CW_ASSIGN_OR_RETURN(std::string dev, AttachLoop(file.get(), loop));
  // nosuid, nodev: nothing a program leaves there gains privileges on the host.
  if (::mount(dev.c_str(), mount_point.c_str(), "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME,
              "noinit_itable") != 0) {
    return Unavailable("cannot mount " + dev + " (" + image.string() + ") at " +
                       mount_point.string() + ": " + ErrnoText(errno));
  }
  return Status::Ok();  // `loop` closes: the mount alone holds the device now
}

Status MountJobWork(const fs::path& root, const JobLimits& limits) {
  auto free = FreeBytesOn(root);
  return MountJobFilesystem(root / "work.img", root / "work",
                            JobFilesystemBytes(limits, free.ok() ? *free : 0));
}

int UnmountUnder(const fs::path& dir) {
  std::error_code ec;
  const std::string base = fs::weakly_canonical(dir, ec).string();
  if (ec || base.empty()) return 0;
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> points;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    if (!(fields >> id >> parent >> devno >> root >> point)) continue;
    point = Unescape(point);
    if (point == base || point.starts_with(base + "/")) points.push_back(point);
  }
  std::sort(points.begin(), points.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  int done = 0;
  for (const std::string& p : points) {
    if (::umount2(p.c_str(), MNT_DETACH) == 0) {
      ++done;
    } else if (errno != EINVAL && errno != ENOENT) {
      spdlog::warn("could not unmount {}: {}", p, ErrnoText(errno));
    }
  }
  return done;
}

bool IsMountPoint(const fs::path& dir) {
  struct stat self {}, parent {};
  if (::lstat(dir.c_str(), &self) != 0 || !S_ISDIR(self.st_mode)) return false;
  if (::lstat((dir / "..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev;
}

Result<std::uint64_t> UsedBytes(const fs::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return IoError("cannot read the use of " + dir.string() + ": " + ErrnoText(errno));
  }
  return static_cast<std::uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
}

Result<std::uint64_t> FreeBytesOn(const fs::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return IoError("cannot read the free space of " + dir.string() + ": " + ErrnoText(errno));
  }
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

OutputLimitChoice ProbeJobFilesystems(const fs::path& jobs_dir, bool same_view,
                                      const std::string& engine_socket) {
  const std::string walk =
      "MAX_OUTPUT_SIZE_GB is measured by walking the job's folders every second, which does "
      "not see files deleted while open, folders the worker cannot read or paths too deep: ";
  if (::geteuid() != 0) {
    return {false, walk + "the worker is not root, so it cannot give each job a filesystem"};
  }
  if (!same_view) {
    return {false, walk + "the worker sees HOST_DIRECTORY at another path than the engine "
                          "(it runs in a container), so the engine would not see its mounts"};
  }
  const std::string ours = MountNamespace("/proc/self");
  const std::string engines = EngineMountNamespace(engine_socket);
  if (ours.empty() || ours != engines) {
    return {false, walk + "the worker and the engine (" + engine_socket +
                          ") are not in one mount namespace (a container, a sandboxed "
                          "service, or an engine it cannot see), so the engine would not see "
                          "its mounts"};
  }
  std::error_code ec;
  const bool made = fs::create_directories(jobs_dir, ec);
  const std::string name = ".probe-" + RandomHex(4);
  const fs::path image = jobs_dir / (name + ".img");
  const fs::path point = jobs_dir / name;
  Status mounted = MountJobFilesystem(image, point, 64ull << 20);
  Result<std::uint64_t> used = mounted.ok() ? UsedBytes(point) : mounted;
  UnmountUnder(point);
  fs::remove(point, ec);
  fs::remove(image, ec);
  if (made) fs::remove(jobs_dir, ec);  // as it was
  if (!mounted.ok()) {
    return {false, walk + "a job filesystem could not be made (" + mounted.message() + ")"};
  }
  if (!used.ok()) return {false, walk + used.status().message()};
  return {true,
          "MAX_OUTPUT_SIZE_GB is held by the kernel: each job's folders live on an ext4 "
          "filesystem of their own (a loop-mounted sparse file), whose use counts every byte "
          "the programs put there"};
}

void ChooseOutputLimit(JobEnvironment& env, const std::string& engine_socket) {
  env.limits.job_filesystem = false;
  if (env.limits.max_output_bytes == 0) {
    spdlog::info("MAX_OUTPUT_SIZE_GB=0: what the programs write is not limited");
    return;
  }
  OutputLimitChoice c =
      ProbeJobFilesystems(env.base_dir / "jobs", env.base_dir == env.host_dir, engine_socket);
  env.limits.job_filesystem = c.job_filesystem;
  spdlog::log(c.job_filesystem ? spdlog::level::info : spdlog::level::warn, "{}", c.how);
}

}  // namespace cw
