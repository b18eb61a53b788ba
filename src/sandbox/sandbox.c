/* The one program of the worker's own image (sandbox_image.h), static so
 * the image holds nothing else:
 *
 *   sandbox            holds a network namespace: waits for SIGTERM or
 *                      SIGINT, reaping children as a PID 1 must
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
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
  fprintf(stderr, "usage: sandbox [remove FOLDER | size FOLDER]\n");
  return 2;
}
