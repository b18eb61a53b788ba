// CW_TEST_RUN_AS=<user>: the integration test binary runs as that user
// (run_as_user.cc says how). Threads: any.
#pragma once

#include <string>

namespace cw {

// The user CW_TEST_RUN_AS names when it does not exist (the tests then skip),
// else empty.
std::string RunAsUserMissing();

}  // namespace cw
