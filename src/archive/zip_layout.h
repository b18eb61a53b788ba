// The layout reader: everything decided about a stranger's zip before a byte
// of it is written. It reads the zip's central directory itself, with bounded
// reads and every size checked against the file (libzip 1.7.3 does not notice
// entries that share bytes, the "non-recursive zip bomb"), and it decides
// which entries are safe to unpack: names escaping the folder, absolute
// paths, drive letters, links (in the zip or already in the folder),
// encryption, entry counts and declared sizes. ExtractZip (zip_unpack.cc)
// runs it first, then writes only what it planned.
//
// Not part of the archive part's public surface (that is zip.h); its tests,
// including the corpus test over testdata/zip_corpus, use it directly.
//
// Thread rules: no state of its own; any thread may call any function. A
// ZipHandle is a libzip archive, which one thread uses at a time.
#pragma once

#include <sys/types.h>
#include <zip.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "archive/zip.h"
#include "common/status.h"

namespace cw {

struct ZipCloser {
  // Unpacking only reads, so discarding (not closing) never loses anything.
  void operator()(zip_t* za) const { zip_discard(za); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipCloser>;

// ---- Our own reading of the central directory ----------------------------

// One central-directory entry, as far as the overlap check needs it.
struct EntrySpan {
  std::uint64_t start = 0;  // local header offset
  std::uint64_t end = 0;    // one past the entry's last byte (data descriptor included)
  std::uint64_t comp_size = 0;
  std::uint64_t name_hash = 0;  // FNV-1a of the raw name, to match libzip's entry
  std::uint64_t index = 0;
};

struct ZipLayout {
  std::uint64_t entries = 0;
  std::uint64_t cd_start = 0;  // the central directory, which no entry may overlap either
  std::uint64_t cd_end = 0;
  std::vector<EntrySpan> spans;  // in central directory order
};

// Walks the central directory of `zip_path` (ZIP64 included) and each
// entry's local header. InvalidInput "<path> is not a valid zip file (...)"
// when anything points outside the file or past its own record; InvalidInput
// "the zip has N entries, more than the M allowed" above limits.max_entries;
// Cancelled when limits.cancelled says so (checked every 1024 entries).
// Reads at most 64 KiB + 22 bytes of the tail and one header at a time.
Result<ZipLayout> ReadZipLayout(const std::filesystem::path& zip_path, const UnpackLimits& limits);

// ---- Deciding what may be unpacked ---------------------------------------

// Step 1: the archive as a whole. A regular, non-empty file that libzip opens
// (strictly, or, when only its consistency check fails, leniently), with no
// more entries than limits.max_entries, whose entries as libzip sees them are
// those ReadZipLayout finds and share no bytes with each other or with the
// central directory. Refusals as ExtractZip documents them (zip.h); NotFound
// when there is no file.
Result<ZipHandle> OpenCheckedZip(const std::filesystem::path& zip_path, const UnpackLimits& limits);

// One entry of the archive, checked and ready to unpack.
struct PlannedEntry {
  zip_uint64_t index = 0;
  std::string name;                // as stored, for messages
  std::filesystem::path relative;  // normalised, never empty for files
  bool is_dir = false;
  mode_t mode = 0;         // permission bits to apply
  std::uint64_t size = 0;  // uncompressed size, as the zip declares it
};

struct UnpackPlan {
  std::vector<PlannedEntry> entries;  // in the zip's order, macOS litter left out
  std::uint64_t declared_bytes = 0;   // their declared sizes added up (saturating)
};

// Step 2: every entry of `za` (from OpenCheckedZip), in order. `dest` is the
// folder it would be unpacked into, existing and canonical: a link already
// in it may not carry an entry elsewhere. Refuses (InvalidInput, naming the
// entry) names outside dest, names too long for the file system, symbolic
// links, encrypted entries and files without a name, then declared sizes
// adding up to more than limits.max_bytes. IoError when a name cannot be
// resolved for another reason; Cancelled when limits.cancelled says so.
// Writes nothing.
Result<UnpackPlan> PlanUnpack(zip_t* za, const std::filesystem::path& zip_path,
                              const std::filesystem::path& dest, const UnpackLimits& limits);

// Turns an entry name into a path relative to the destination, or refuses it
// (InvalidInput: OutsideMessage). Backslashes count as separators; "." and
// empty parts are dropped; "..", a leading '/' or a drive letter refuse.
// `skip` is set for entries that must be ignored (macOS litter, __MACOSX/).
Result<std::filesystem::path> NormaliseEntryName(const std::string& raw_name, bool& skip);

// The messages both halves of unpacking give.
std::string OutsideMessage(const std::string& name);
std::string TooBigMessage(const UnpackLimits& limits);

}  // namespace cw
