// Storage on the local disk, for run-local: URLs are file:///abs/path
// (percent-encoded) or plain absolute paths.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "storage/storage.h"

namespace cw {

// The local path a file URL or absolute path names. Other schemes, relative
// paths and file URLs naming another host are InvalidInput. The query and
// fragment of a file URL are dropped; "%3F" stands for a '?' in a name.
// `verb` ("fetch", "store to") goes into the message for a wrong scheme.
Result<std::filesystem::path> LocalPathFromUrl(const std::string& url, const std::string& verb = "fetch");

class LocalStorage : public Storage {
 public:
  // A missing source is NotFound "no file at <path>". `dest` is replaced
  // whole or left as it was.
  Status Fetch(const std::string& url, const std::filesystem::path& dest,
               const TransferProgressFn& progress = {}) override;

  // Creates the parent folders; writes to a temporary name beside the
  // target, then renames. `content_type` means nothing on a disk.
  Status Put(const std::string& url, const std::filesystem::path& src,
             const std::string& content_type) override;
};

}  // namespace cw
