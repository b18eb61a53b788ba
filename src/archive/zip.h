// Zip files in and out, safely and without holding whole files in memory.
// Zips to unpack come from strangers (participants, organizers) and are
// treated as hostile; so is the folder CreateZip packs (a participant's
// program wrote it).
//
// This header is the archive part's whole public surface. Behind it:
// zip_layout.h/.cc, the layout reader, which decides before anything is
// written whether a zip may be unpacked and what each entry becomes;
// zip_unpack.cc (ExtractZip), which writes what it planned; zip_write.cc
// (CreateZip). Every function here may be called from any thread; calls
// share no state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/env.h"
#include "common/status.h"

namespace cw {

struct ExtractStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

// What one ExtractZip may take. Sizes are bytes; messages show them as
// decimal gigabytes (1 GB = 1e9 bytes), next to the setting's name.
struct UnpackLimits {
  std::uint64_t max_bytes = 0;       // 0 = no limit. Total uncompressed bytes of the archive (MAX_UNPACKED_SIZE_GB)
  std::uint64_t max_entries = 0;     // 0 = no limit. Number of entries
  std::uint64_t min_free_bytes = 0;  // 0 = none. Stop before the destination file system's free space (statvfs f_bavail*f_frsize) would fall under this (MIN_FREE_DISK_GB)
  // Where the free space is read: empty, the destination's file system; a
  // job folder on a filesystem of its own names the host's disk here.
  std::filesystem::path free_space_of;
  std::string bytes_setting = "MAX_UNPACKED_SIZE_GB";  // names used in messages
  std::string free_setting = "MIN_FREE_DISK_GB";
  std::function<bool()> cancelled;   // checked between chunks; when true, stop with a Cancelled status
};

// Unzips `zip_path` into `dest_dir` (created when missing).
//
// Refused before anything is written (dest_dir is created, nothing in it):
// - InvalidInput naming the entry: any entry that would land outside dest_dir
//   (absolute paths, "..", drive letters, a link already in dest_dir),
//   symbolic links, encrypted entries, names too long for the file system;
// - InvalidInput: more entries than limits.max_entries ("the zip has 120000
//   entries, more than the 100000 allowed"); declared uncompressed sizes adding
//   up to more than limits.max_bytes ("the zip unpacks to more than 1 GB
//   (MAX_UNPACKED_SIZE_GB=1); ...");
// - InvalidInput: entries whose data overlap in the file (the "non-recursive
//   zip bomb"), found by reading the central directory and local headers
//   ourselves, since libzip does not check this; the same check decides
//   whether a zip failing libzip's strict consistency check is still read;
// - IoError: the declared size would leave less than limits.min_free_bytes
//   free on the destination file system ("unpacking would leave less than
//   5 GB free on /path (MIN_FREE_DISK_GB=5); ...").
// While writing, the bytes actually produced are counted, so a header that
// lies about sizes is stopped as soon as the running total passes
// limits.max_bytes (InvalidInput) or the free-space reserve (IoError);
// limits.cancelled is checked between chunks (Cancelled).
// On any failure after writing started (limits, cancel, bad data, disk
// trouble), everything this call wrote is removed again: every file it
// created or overwrote, and every folder that did not exist before it
// (dest_dir itself stays). Other files already in dest_dir are left alone.
// Skips macOS litter (__MACOSX/). A file that is not a zip is InvalidInput
// saying so. Set-uid/set-gid/sticky bits are never applied. Files are
// written through `env`; a write that fails (a full disk) is IoError naming
// the entry, never the host's folders, and takes back the rest as above.
Result<ExtractStats> ExtractZip(const std::filesystem::path& zip_path,
                                const std::filesystem::path& dest_dir,
                                const UnpackLimits& limits = {}, Env& env = Env::Default());

// Zips the contents of `src_dir` (paths relative to it, empty folders kept)
// into `zip_path`, streaming from the files, one file open at a time. Only
// folders and regular files go in: symbolic links, FIFOs, sockets and devices
// are skipped with a warning. Each file is opened only when libzip reads it,
// from src_dir one path component at a time with O_NOFOLLOW (no link is
// followed anywhere on its path) and O_NONBLOCK, and must then be a regular
// file, so a link, FIFO or folder-link swapped in after the listing fails the
// zip cleanly (IoError) instead of being followed or waited on. Only the permission bits
// (mode & 0777) are stored, never set-uid, set-gid or sticky. A zip being
// written inside src_dir is not included; an empty folder gives a valid empty
// zip. `cancelled` is checked while listing and between chunks while writing
// (Cancelled). On failure no zip (and no half-written one) is left. The zip
// is written through `env`; a write that fails (a full disk) is IoError
// naming the zip by its file name.
Status CreateZip(const std::filesystem::path& src_dir, const std::filesystem::path& zip_path,
                 const std::function<bool()>& cancelled = {}, Env& env = Env::Default());

// True when the file starts like a zip archive (local header or empty-archive
// end record).
bool LooksLikeZip(const std::filesystem::path& path);

}  // namespace cw
