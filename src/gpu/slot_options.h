// Parsers for the per-slot container options an admin writes on the command
// line or in the config: sizes ("16g") and extra mounts ("/data:/data:ro").
#pragma once

#include <string_view>

#include "common/status.h"
#include "engine/engine.h"

namespace cw {

// "1024", "512m", "16g", "1.5G", "2GiB", "2GB" -> bytes. Units go up to "p",
// case does not matter, and every unit is binary (k = 1024), "GB" included:
// that is how `docker run --shm-size/--memory` read them, and admins copy
// those values. A fraction of a byte is dropped. InvalidInput for anything
// else, negatives, and sizes beyond what a long long holds.
Result<long long> ParseBytes(std::string_view text);

// "/host/path:/container/path" or with ":ro" / ":rw" (default rw). Both paths
// absolute, without ".." (the mount must be exactly what the admin read), and
// the container path not "/". A trailing '/' is dropped.
Result<Mount> ParseMountSpec(std::string_view spec);

}  // namespace cw
