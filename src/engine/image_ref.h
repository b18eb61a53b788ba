// Image references as the Docker engine's pull call wants them split:
// "localhost:5000/team/img:tag" -> repository "localhost:5000/team/img", tag "tag".
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cw {

struct ImageRef {
  std::string repository;  // "python", "codalab/codalab-legacy", "localhost:5000/foo/bar"
  std::string tag;         // empty when pinned by digest
  std::string digest;      // "sha256:..." or empty

  // The fromImage argument of a pull: the repository, plus "@digest" if pinned.
  std::string FromImage() const;
  // "repo:tag" or "repo@digest".
  std::string ToString() const;
  // Docker's rule: the repository's first part names a registry when it
  // holds '.' or ':', or is "localhost" ("ghcr.io/x", "localhost:5000/x").
  bool NamesRegistry() const;
};

// Where Podman files an image loaded or built on its host under a name with
// no registry ("team/model:1" -> "localhost/team/model:1").
inline constexpr std::string_view kPodmanLocalPrefix = "localhost/";

// Fills in the "latest" tag the engine assumes when there is neither tag nor
// digest. InvalidInput for an empty reference or one with spaces or a bad tag.
Result<ImageRef> ParseImageRef(std::string_view ref);

}  // namespace cw
