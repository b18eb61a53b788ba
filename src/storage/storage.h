// Where bundles come from and where outputs go. Today: local files
// (local_storage.h, for run-local). Next: signed HTTP(S) URLs.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"

namespace cw {

class Storage {
 public:
  virtual ~Storage() = default;

  // Copies what `url` names into the file `dest` (created or replaced),
  // streaming, never holding the whole file in memory. A missing source is
  // NotFound, a refused one PermissionDenied, both with the reason.
  virtual Status Fetch(const std::string& url, const std::filesystem::path& dest) = 0;

  // Stores the file `src` at `url` with the given Content-Type.
  virtual Status Put(const std::string& url, const std::filesystem::path& src,
                     const std::string& content_type) = 0;
};

}  // namespace cw
