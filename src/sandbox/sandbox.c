/* The one program of the worker's own image (sandbox_image.h), static so
 * the image holds nothing else:
 *
 *   sandbox            holds a network namespace: waits for SIGTERM or
 *                      SIGINT, reaping children as a PID 1 must
 *   sandbox hold NET.. the same, after adding a "prohibit" route to each
 *                      network NET (a.b.c.d/n, or IPv6) in that namespace:
 *                      a program that joins it cannot reach those networks,
 *                      nor (without CAP_NET_ADMIN) remove the routes. Needs
 *                      CAP_NET_ADMIN in the namespace; exit 1 when a route
 *                      cannot be added.
 *   sandbox remove D   removes everything under folder D, whatever its
 *                      owner and modes (it runs as root in its container);
 *                      D itself stays
 *   sandbox size D     prints the bytes the files under D take on disk
 *
 * Folders nested deeper than PATH_MAX are walked through file descriptors,
 * one per level, never through whole paths. Errors go to stderr, with the
 * path below D, and make the exit code 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void fail(const char *what, const char *name) {
  if (failures++ < 20) fprintf(stderr, "sandbox: %s %s: %s\n", what, name, strerror(errno));
}

static void on_stop(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) { (void)sig; }

static _Noreturn void hold(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_child; /* so that pause() returns to reap */
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) {
    pause();
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}

/* Adds "prohibit NET" to the main routing table of this network namespace
 * (as `ip route add prohibit NET` does), through rtnetlink. */
static int prohibit(const char *net) {
  const char *slash = strchr(net, '/');
  char addr[INET6_ADDRSTRLEN];
  if (!slash || (size_t)(slash - net) >= sizeof addr) {
    errno = EINVAL;
    return -1;
  }
  memcpy(addr, net, (size_t)(slash - net));
  addr[slash - net] = 0;
  const int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
  const int bytes = family == AF_INET ? 4 : 16;
  char *end;
  long bits = strtol(slash + 1, &end, 10);
  unsigned char dst[16];
  if (*end || slash[1] == 0 || bits < 0 || bits > bytes * 8 || inet_pton(family, addr, dst) != 1) {
    errno = EINVAL;
    return -1;
  }
  struct {
    struct nlmsghdr nh;
    struct rtmsg rt;
    char attrs[64];
  } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  req.nh.nlmsg_type = RTM_NEWROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK;
  req.rt.rtm_family = (unsigned char)family;
  req.rt.rtm_dst_len = (unsigned char)bits;
  req.rt.rtm_table = RT_TABLE_MAIN;
  req.rt.rtm_protocol = RTPROT_STATIC;
  req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
  req.rt.rtm_type = RTN_PROHIBIT;
  struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
  rta->rta_type = RTA_DST;
  rta->rta_len = (unsigned short)RTA_LENGTH(bytes);
  memcpy(RTA_DATA(rta), dst, (size_t)bytes);
  req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  char answer[1024];
  ssize_t n = -1;
  if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) >= 0) {
    n = recv(fd, answer, sizeof answer, 0);
  }
  int saved = errno;
  close(fd);
  errno = saved;
  if (n < 0) return -1;
  struct nlmsghdr *h = (struct nlmsghdr *)answer;
  if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR) {
    errno = EPROTO;
    return -1;
  }
  const struct nlmsgerr *e = NLMSG_DATA(h);
  if (e->error == 0) return 0;
  errno = -e->error;
  return -1;
}

/* An immutable or append-only flag stops unlink even for root; clear it
 * (needs CAP_LINUX_IMMUTABLE, which a program could only have had with it). */
static void clear_flags(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
      (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
    flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
    ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  close(fd);
}

/* Walks the folder open at `fd` (which it closes). remove: empties it;
 * size: adds what its files take to *bytes. */
static void walk(int fd, int remove, int depth, unsigned long long *bytes) {
  if (remove && depth > 0) fchmod(fd, 0700); /* so that it can be listed and emptied */
  DIR *dir = fdopendir(fd);
  if (!dir) {
    fail("cannot list", "a folder");
    close(fd);
    return;
  }
  struct dirent *e;
  while ((errno = 0, e = readdir(dir))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      fail("cannot look at", e->d_name);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 && remove) {
        fchmodat(fd, e->d_name, 0700, 0);
        sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (sub < 0) {
        fail("cannot open", e->d_name);
        continue;
      }
      walk(sub, remove, depth + 1, bytes);
    }
    if (bytes) *bytes += (unsigned long long)st.st_blocks * 512ULL;
    if (!remove) continue;
    int how = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
    if (unlinkat(fd, e->d_name, how) != 0) {
      clear_flags(fd, e->d_name);
      if (unlinkat(fd, e->d_name, how) != 0) fail("cannot remove", e->d_name);
    }
  }
  if (errno != 0) fail("cannot list", "a folder");
  /* Removing entries while reading may hide some from readdir: look again. */
  if (remove) {
    rewinddir(dir);
    while ((e = readdir(dir))) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        errno = ENOTEMPTY;
        fail("left behind", e->d_name);
        break;
      }
    }
  }
  closedir(dir);
}

int main(int argc, char **argv) {
  if (argc == 1) hold();
  if (argc >= 2 && !strcmp(argv[1], "hold")) {
    for (int i = 2; i < argc; ++i) {
      if (prohibit(argv[i]) != 0) {
        fail("cannot prohibit the route to", argv[i]);
        return 1;
      }
    }
    hold();
  }
  if (argc == 3 && (!strcmp(argv[1], "remove") || !strcmp(argv[1], "size"))) {
    int remove = !strcmp(argv[1], "remove");
    int fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (remove && errno == ENOENT) return 0;
      fail("cannot open", argv[2]);
      return 1;
    }
    unsigned long long bytes = 0;
    walk(fd, remove, 0, remove ? NULL : &bytes);
    if (!remove) printf("%llu\n", bytes);
    return failures ? 1 : 0;
  }
  fprintf(stderr, "usage: sandbox [hold [NETWORK/BITS...] | remove FOLDER | size FOLDER]\n");
  return 2;
}
