// The worker's own image: the one static program of sandbox.c (a namespace
// holder that waits for SIGTERM, a remover and a sizer of folders), built
// with the worker and carried inside its binary. At start the worker loads
// it into the engine from a tar stream, so it needs no registry, and no
// competition's image runs anything long-lived or with the worker's trust.
//
// Its tag is the program's own digest: a worker of another version finds
// its own image, and an image is never loaded twice.
//
// Thread rules: free functions over constant data; any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/engine.h"

namespace cw {

// The program's path inside the image.
inline constexpr const char* kSandboxProgram = "/sandbox";

// The program's bytes (a static Linux executable).
std::string_view SandboxProgramBytes();

// "codabench-worker/sandbox:<12 hex digits of the program's SHA-256>".
std::string SandboxImageReference();

// The image's one layer: a tar stream holding only kSandboxProgram.
std::string SandboxLayerTar();

// Loads the image unless the engine has it; returns its reference.
Result<std::string> EnsureSandboxImage(ContainerEngine& engine);

}  // namespace cw
