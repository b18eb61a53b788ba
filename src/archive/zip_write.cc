// CreateZip (zip.h): zips a folder a participant's program wrote, which is
// as hostile as any upload: no link is followed, no FIFO waited on, no
// set-uid bit kept, and no half-written zip left behind.
#include "archive/zip.h"
#include "archive/zip_internal.h"
#include "common/env.h"
#include "common/fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <random>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

namespace cw {
namespace fs = std::filesystem;
using zip_internal::IsCancelled;
using zip_internal::kChunk;

namespace {

std::string RandomSuffix() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::uint64_t value = engine();
  for (int i = 0; i < 12; ++i) {
    out.push_back(kHex[value & 0xf]);
    value >>= 4;
  }
  return out;
}

struct SourceItem {
  fs::path path;
  std::string name;  // '/'-separated, relative to the source folder
  bool is_dir = false;
  mode_t mode = 0;  // permission bits only
  std::uint64_t size = 0;  // as listed; the file may change before it is read
  time_t mtime = 0;
};

// A folder or file of the source as its owner knows it: its name inside the
// zip, never the worker's path (the text may reach a participant's status).
std::string Inside(const std::string& name) {
  if (name.empty()) return "the folder to zip";
  return "'" + (name.back() == '/' ? name.substr(0, name.size() - 1) : name) + "'";
}

Status CollectItems(const fs::path& dir, const std::string& prefix, const fs::path& skip_path,
                    const std::function<bool()>& cancelled, std::vector<SourceItem>& items) {
  std::error_code ec;
  std::vector<fs::directory_entry> children;
  fs::directory_iterator it(dir, ec);
  if (ec) return IoError("cannot list " + Inside(prefix) + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    children.push_back(*it);
  }
  if (ec) return IoError("cannot list " + Inside(prefix) + ": " + ec.message());
  std::sort(children.begin(), children.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) {
              return a.path().filename().native() < b.path().filename().native();
            });
  for (const fs::directory_entry& child : children) {
    if (IsCancelled(cancelled)) return Cancelled("zipping was cancelled");
    struct stat st;
    // lstat: a link is judged as a link and never followed.
    if (::lstat(child.path().c_str(), &st) != 0) {
      return IoError("cannot read " + Inside(prefix + child.path().filename().string()) + ": " +
                     ErrnoText(errno));
    }
    std::string name = prefix + child.path().filename().string();
    if (S_ISLNK(st.st_mode)) {
      spdlog::warn("not zipping {}: symbolic links are skipped", child.path().string());
      continue;
    }
    // Only the permission bits: set-uid, set-gid and sticky bits set by a
    // participant's program must not travel on.
    mode_t perms = st.st_mode & 0777;
    if (S_ISDIR(st.st_mode)) {
      items.push_back({child.path(), name + "/", true, perms, 0, st.st_mtime});
      CW_RETURN_IF_ERROR(CollectItems(child.path(), name + "/", skip_path, cancelled, items));
    } else if (S_ISREG(st.st_mode)) {
      if (!skip_path.empty() && child.path() == skip_path) continue;
      items.push_back({child.path(), name, false, perms, static_cast<std::uint64_t>(st.st_size), st.st_mtime});
    } else {
      // Reading a FIFO would block forever; devices and sockets have no content to keep.
      spdlog::warn("not zipping {}: not a regular file or folder", child.path().string());
    }
  }
  return Status::Ok();
}

// libzip writes nothing at all for an archive without entries, yet an empty
// output folder must still give a valid zip.
Status WriteEmptyZip(Env& env, const fs::path& path, const std::string& name) {
  static constexpr std::array<char, 22> kEndRecord = {'P', 'K', 5, 6};
  CW_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                      env.NewWritableFile(path, {false, 0644, name}));
  CW_RETURN_IF_ERROR(file->Write(kEndRecord.data(), kEndRecord.size()));
  return file->Close();
}

// Opens `name` ('/'-separated, relative to `root`) for reading one path
// component at a time, following no link anywhere on the way (O_NOFOLLOW
// alone only covers the last component) and never blocking on a FIFO.
// -1 with errno set when it cannot.
int OpenWithoutLinks(const fs::path& root, const std::string& name) {
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return -1;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = name.find('/', start);
    bool last = slash == std::string::npos;
    std::string part = name.substr(start, last ? std::string::npos : slash - start);
    int flags = last ? (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                     : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int next = ::openat(dir, part.c_str(), flags);
    int err = errno;
    ::close(dir);
    if (next < 0) {
      errno = err;
      return -1;
    }
    if (last) return next;
    dir = next;
    start = slash + 1;
  }
}

// Shared by the file sources of one CreateZip: why writing stopped.
struct WriteState {
  const fs::path& root;  // the folder being zipped, resolved
  const std::function<bool()>& cancelled;
  bool was_cancelled = false;
  std::string failure;  // first file problem, for the message
};

// A libzip source for one file of the folder being zipped. Nothing is opened
// until libzip asks (at zip_close, one file after the other), and then without
// following links or blocking, and only a regular file is read, in chunks.
struct FileSource {
  const SourceItem* item = nullptr;
  WriteState* state = nullptr;
  int fd = -1;
  zip_error_t error;

  zip_int64_t Fail(int zip_code, int sys_errno, std::string why) {
    if (state->failure.empty()) state->failure = std::move(why);
    zip_error_set(&error, zip_code, sys_errno);
    return -1;
  }
  zip_int64_t Cancel() {
    state->was_cancelled = true;
    zip_error_set(&error, ZIP_ER_CANCELLED, 0);
    return -1;
  }
  void CloseFd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  zip_int64_t Handle(void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    switch (cmd) {
      case ZIP_SOURCE_OPEN: {
        if (IsCancelled(state->cancelled)) return Cancel();
        CloseFd();
        const std::string path = item->path.string();
        fd = OpenWithoutLinks(state->root, item->name);
        if (fd < 0) {
          int err = errno;
          if (err == ELOOP || err == ENOTDIR) {
            return Fail(ZIP_ER_OPEN, err, "cannot zip " + path + ": it or a folder on its way was replaced by "
                                          "a symbolic link or another kind of file while zipping");
          }
          return Fail(ZIP_ER_OPEN, err, "cannot read " + path + ": " + ErrnoText(err));
        }
        struct stat st;
        if (::fstat(fd, &st) != 0) {
          int err = errno;
          CloseFd();
          return Fail(ZIP_ER_OPEN, err, "cannot read " + path + ": " + ErrnoText(err));
        }
        if (!S_ISREG(st.st_mode)) {
          CloseFd();
          return Fail(ZIP_ER_OPEN, 0, "cannot zip " + path + ": it stopped being a regular file while zipping");
        }
        return 0;
      }
      case ZIP_SOURCE_READ: {
        if (IsCancelled(state->cancelled)) return Cancel();
        std::size_t want = static_cast<std::size_t>(std::min<zip_uint64_t>(len, kChunk));
        while (true) {
          ssize_t n = ::read(fd, data, want);
          if (n >= 0) return n;
          if (errno == EINTR) continue;
          int err = errno;
          return Fail(ZIP_ER_READ, err, "cannot read " + item->path.string() + ": " + ErrnoText(err));
        }
      }
      case ZIP_SOURCE_CLOSE:
        CloseFd();
        return 0;
      case ZIP_SOURCE_STAT: {
        zip_stat_t* st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len, &error);
        if (st == nullptr) return -1;
        zip_stat_init(st);
        st->mtime = item->mtime;
        // The size as listed: libzip only uses it to choose between plain and
        // ZIP64 headers, and records what it actually read.
        st->size = item->size;
        st->valid |= ZIP_STAT_MTIME | ZIP_STAT_SIZE;
        return sizeof(zip_stat_t);
      }
      case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&error, data, len);
      case ZIP_SOURCE_FREE:
        CloseFd();
        zip_error_fini(&error);
        delete this;
        return 0;
      case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
      default:
        zip_error_set(&error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
  }

  static zip_int64_t Callback(void* self, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    return static_cast<FileSource*>(self)->Handle(data, len, cmd);
  }
};

// The zip itself, as libzip writes it: through the Env, so that a full disk
// (or a test's injected fault) ends the zip with a message naming it.
// libzip asks for a seekable, writable source; this one only writes a new
// file (it never holds an older archive to read).
struct ArchiveSink {
  Env* env = nullptr;
  fs::path path;
  std::string name;  // for messages: the zip's file name
  WriteState* state = nullptr;
  std::unique_ptr<WritableFile> file;
  zip_uint64_t size = 0;  // the furthest byte written
  zip_error_t error;

  zip_int64_t Fail(const Status& why) {
    if (state->failure.empty()) state->failure = why.message();
    zip_error_set(&error, ZIP_ER_WRITE, 0);
    return -1;
  }

  zip_int64_t Handle(void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    switch (cmd) {
      case ZIP_SOURCE_STAT:
        // Nothing there yet: libzip then makes a new archive.
        zip_error_set(&error, ZIP_ER_READ, ENOENT);
        return -1;
      case ZIP_SOURCE_BEGIN_WRITE: {
        auto opened = env->NewWritableFile(path, {false, 0644, name});
        if (!opened.ok()) return Fail(opened.status());
        file = std::move(*opened);
        size = 0;
        return 0;
      }
      case ZIP_SOURCE_WRITE: {
        Status st = file->Write(static_cast<const char*>(data), static_cast<std::size_t>(len));
        if (!st.ok()) return Fail(st);
        size = std::max<zip_uint64_t>(size, file->Tell());
        return static_cast<zip_int64_t>(len);
      }
      case ZIP_SOURCE_SEEK_WRITE: {
        zip_int64_t to = zip_source_seek_compute_offset(file->Tell(), size, data, len, &error);
        if (to < 0) return -1;
        Status st = file->Seek(static_cast<std::uint64_t>(to));
        if (!st.ok()) return Fail(st);
        return 0;
      }
      case ZIP_SOURCE_TELL_WRITE:
        return static_cast<zip_int64_t>(file->Tell());
      case ZIP_SOURCE_COMMIT_WRITE: {
        Status st = file->Close();
        file.reset();
        if (!st.ok()) return Fail(st);
        return 0;
      }
      case ZIP_SOURCE_ROLLBACK_WRITE:
        file.reset();
        (void)env->RemoveFile(path);
        return 0;
      case ZIP_SOURCE_REMOVE:
        file.reset();
        if (Status st = env->RemoveFile(path); !st.ok()) return Fail(st);
        return 0;
      case ZIP_SOURCE_OPEN:
      case ZIP_SOURCE_READ:
      case ZIP_SOURCE_SEEK:
      case ZIP_SOURCE_TELL:
        zip_error_set(&error, ZIP_ER_OPNOTSUPP, 0);  // never asked: no old archive to read
        return -1;
      case ZIP_SOURCE_CLOSE:
        return 0;
      case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&error, data, len);
      case ZIP_SOURCE_FREE:
        zip_error_fini(&error);
        delete this;
        return 0;
      case ZIP_SOURCE_SUPPORTS:
        return ZIP_SOURCE_SUPPORTS_WRITABLE;
      default:
        zip_error_set(&error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
  }

  static zip_int64_t Callback(void* self, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    return static_cast<ArchiveSink*>(self)->Handle(data, len, cmd);
  }
};

// A new archive at `path`, written through `env`; null with `failure` set
// when it cannot be started.
zip_t* OpenArchive(Env& env, const fs::path& path, const std::string& name, WriteState& state,
                   std::string& failure) {
  auto* sink = new ArchiveSink;
  sink->env = &env;
  sink->path = path;
  sink->name = name;
  sink->state = &state;
  zip_error_init(&sink->error);
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_function_create(&ArchiveSink::Callback, sink, &error);
  if (source == nullptr) {
    zip_error_fini(&sink->error);
    delete sink;
    failure = "cannot create " + name + ": " + zip_error_strerror(&error);
    zip_error_fini(&error);
    return nullptr;
  }
  zip_t* za = zip_open_from_source(source, ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (za == nullptr) {
    zip_source_free(source);  // frees the sink too
    failure = "cannot create " + name + ": " + zip_error_strerror(&error);
  }
  zip_error_fini(&error);
  return za;
}

// Whether deflating the file would be wasted work: its first 64 KiB (read
// through the same link-free open as the zip's own reads) shrink by less
// than 3 % at zlib's fastest level. Model weights, images, archives and
// random data then cost a copy instead of a deflate (several times faster);
// text still shrinks as before. Small files are always deflated.
// libzip deflates at level 9 unless told. Measured on 64 MiB of CSV-like
// text (bench/zip_bench): level 9 took 19.8 s of CPU for a 19.0 MiB zip,
// level 6 (zlib's default, what Python's zipfile and so the Python worker
// use) 4.6 s for 19.6 MiB, level 1 1.0 s for 23.7 MiB. A worker's CPU is
// the scarce thing; a fifth more bytes to store is not.
constexpr zip_uint32_t kDeflateLevel = 1;

bool StoreRatherThanDeflate(const fs::path& root, const SourceItem& item) {
  constexpr std::size_t kSample = 64 * 1024;
  if (item.size < 16 * 1024) return false;
  Fd fd(OpenWithoutLinks(root, item.name));
  if (fd.get() < 0) return false;  // the real read reports it
  std::vector<unsigned char> in(kSample);
  std::size_t got = 0;
  while (got < in.size()) {
    ssize_t n = ::read(fd.get(), in.data() + got, in.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < 16 * 1024) return false;
  uLongf out_size = compressBound(static_cast<uLong>(got));
  std::vector<unsigned char> out(out_size);
  if (compress2(out.data(), &out_size, in.data(), static_cast<uLong>(got), 1) != Z_OK) return false;
  return out_size * 100 > got * 97;
}

Status WriteZip(Env& env, const fs::path& root, const std::vector<SourceItem>& items,
                const fs::path& out, const std::string& name, const std::function<bool()>& cancelled) {
  if (IsCancelled(cancelled)) return Cancelled("zipping was cancelled");
  if (items.empty()) return WriteEmptyZip(env, out, name);
  WriteState state{root, cancelled, false, {}};
  std::string open_failure;
  zip_t* za = OpenArchive(env, out, name, state, open_failure);
  if (za == nullptr) return IoError(state.failure.empty() ? open_failure : state.failure);
  auto fail = [&](const std::string& what) {
    Status status = state.was_cancelled     ? Cancelled("zipping was cancelled")
                    : !state.failure.empty() ? IoError(state.failure)
                                             : IoError(what + ": " + zip_strerror(za));
    zip_discard(za);
    return status;
  };
  for (const SourceItem& item : items) {
    zip_int64_t index;
    if (item.is_dir) {
      index = zip_dir_add(za, item.name.c_str(), ZIP_FL_ENC_GUESS);
      if (index < 0) return fail("cannot add folder " + item.path.string() + " to the zip");
    } else {
      auto* ctx = new FileSource;
      ctx->item = &item;
      ctx->state = &state;
      zip_error_init(&ctx->error);
      zip_source_t* source = zip_source_function(za, &FileSource::Callback, ctx);
      if (source == nullptr) {
        zip_error_fini(&ctx->error);
        delete ctx;
        return fail("cannot add " + item.path.string() + " to the zip");
      }
      index = zip_file_add(za, item.name.c_str(), source, ZIP_FL_ENC_GUESS);
      if (index < 0) {
        zip_source_free(source);  // frees ctx too
        return fail("cannot add " + item.path.string() + " to the zip");
      }
      const bool store = StoreRatherThanDeflate(root, item);
      if (zip_set_file_compression(za, static_cast<zip_uint64_t>(index),
                                   store ? ZIP_CM_STORE : ZIP_CM_DEFLATE,
                                   store ? 0 : kDeflateLevel) != 0) {
        return fail("cannot add " + item.path.string() + " to the zip");
      }
    }
    zip_uint32_t attributes =
        static_cast<zip_uint32_t>((item.is_dir ? S_IFDIR : S_IFREG) | item.mode) << 16;
    if (zip_file_set_external_attributes(za, static_cast<zip_uint64_t>(index), 0, ZIP_OPSYS_UNIX,
                                         attributes) != 0) {
      return fail("cannot record permissions of " + item.path.string());
    }
  }
  if (zip_close(za) != 0) return fail("cannot write " + name);
  return Status::Ok();
}

}  // namespace

Status CreateZip(const fs::path& src_dir, const fs::path& zip_path,
                 const std::function<bool()>& cancelled, Env& env) {
  std::error_code ec;
  if (!fs::is_directory(src_dir, ec)) return NotFound("no folder at " + src_dir.string());
  // The zip may be written inside the folder being zipped; an older copy of
  // it must not end up inside the new one.
  fs::path skip_path = fs::weakly_canonical(zip_path, ec);
  if (ec) skip_path.clear();
  fs::path src = fs::canonical(src_dir, ec);
  if (ec) return IoError("cannot resolve " + src_dir.string() + ": " + ec.message());

  std::vector<SourceItem> items;
  CW_RETURN_IF_ERROR(CollectItems(src, "", skip_path, cancelled, items));

  if (!zip_path.parent_path().empty()) {
    fs::create_directories(zip_path.parent_path(), ec);
    if (ec) return IoError("cannot create folder " + zip_path.parent_path().string() + ": " + ec.message());
  }
  fs::path tmp = zip_path;
  tmp += ".part-" + RandomSuffix();
  Status status = WriteZip(env, src, items, tmp, zip_path.filename().string(), cancelled);
  if (status.ok()) status = env.RenameFile(tmp, zip_path);
  if (!status.ok()) (void)env.RemoveFile(tmp);
  return status;
}

}  // namespace cw
