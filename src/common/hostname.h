// This machine's host name (gethostname), "" when it has none.
#pragma once

#include <string>

namespace cw {

std::string Hostname();

}  // namespace cw
