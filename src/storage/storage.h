// Where bundles come from and where outputs go: local files
// (storage/local_storage.h, for run-local) and signed HTTP(S) URLs
// (site/http_storage.h, for the queue), routed by scheme.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/status.h"

namespace cw {

// Bytes of one transfer so far, and its size (0 when not known, e.g. a
// download without Content-Length). Called on the transferring thread, often:
// it must be cheap and must not throw.
using TransferProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

class Storage {
 public:
  virtual ~Storage() = default;

  // Copies what `url` names into the file `dest` (created or replaced),
  // streaming, never holding the whole file in memory. A missing source is
  // NotFound, a refused one PermissionDenied, both with the reason.
  // `progress`, when set, hears how far the copy is. (Every override repeats
  // the default, so a call means the same through any type.)
  virtual Status Fetch(const std::string& url, const std::filesystem::path& dest,
                       const TransferProgressFn& progress = {}) = 0;

  // Stores the file `src` at `url` with the given Content-Type.
  virtual Status Put(const std::string& url, const std::filesystem::path& src,
                     const std::string& content_type) = 0;
};

}  // namespace cw
