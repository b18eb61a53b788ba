#include "sandbox/sandbox_image.h"

#include <cstdio>
#include <cstring>

#include "storage/hash.h"

extern "C" const char cw_sandbox_program_begin[];
extern "C" const char cw_sandbox_program_end[];

namespace cw {
namespace {

constexpr std::size_t kBlock = 512;

// Writes `value` as `width - 1` octal digits and a NUL, as ustar wants.
void Octal(char* field, std::size_t width, unsigned long long value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), value);
}

}  // namespace

std::string_view SandboxProgramBytes() {
  return std::string_view(cw_sandbox_program_begin,
                          static_cast<std::size_t>(cw_sandbox_program_end - cw_sandbox_program_begin));
}

std::string SandboxImageReference() {
  return "codabench-worker/sandbox:" + Sha256Hex(SandboxProgramBytes()).substr(0, 12);
}

std::string SandboxLayerTar() {
  std::string_view program = SandboxProgramBytes();
  char header[kBlock] = {};
  std::strcpy(header, kSandboxProgram + 1);  // "sandbox": a path within the layer
  Octal(header + 100, 8, 0755);              // mode
  Octal(header + 108, 8, 0);                 // uid
  Octal(header + 116, 8, 0);                 // gid
  Octal(header + 124, 12, program.size());   // size
  Octal(header + 136, 12, 0);                // mtime
  header[156] = '0';                         // a regular file
  std::memcpy(header + 257, "ustar", 6);     // magic, with its NUL
  std::memcpy(header + 263, "00", 2);        // version
  // The checksum counts its own field as eight spaces.
  std::memset(header + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  std::snprintf(header + 148, 8, "%06o", sum);  // six digits, a NUL, then the space kept
  header[155] = ' ';

  std::string tar(header, kBlock);
  tar.append(program);
  tar.append((kBlock - program.size() % kBlock) % kBlock, '\0');
  tar.append(2 * kBlock, '\0');  // the end of the archive
  return tar;
}

Result<std::string> EnsureSandboxImage(ContainerEngine& engine) {
  std::string reference = SandboxImageReference();
  CW_ASSIGN_OR_RETURN(bool present, engine.ImageExists(reference));
  if (!present) {
    CW_RETURN_IF_ERROR(engine.ImportImage(reference, SandboxLayerTar()));
  }
  return reference;
}

}  // namespace cw
