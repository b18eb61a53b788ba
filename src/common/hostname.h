// This machine's host name (gethostname), "" when it has none, and the
// node name a worker takes from it.
#pragma once

#include <string>

namespace cw {

std::string Hostname();
// "compute-worker@<host name>": a worker's node name unless told otherwise
// (the Python worker's Celery default).
std::string DefaultNodeName();

}  // namespace cw
