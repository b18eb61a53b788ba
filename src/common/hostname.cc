#include "common/hostname.h"

#include <unistd.h>

namespace cw {

std::string Hostname() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

std::string DefaultNodeName() { return "compute-worker@" + Hostname(); }

}  // namespace cw
