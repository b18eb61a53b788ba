// libFuzzer target for the layout reader (zip_layout.h): each input is
// written to a file and read as a zip, by our own central directory reader
// and then by OpenCheckedZip + PlanUnpack (which write nothing). Optional:
// src/archive/CMakeLists.txt builds it only with a compiler that has
// libFuzzer (clang). Seed it with the corpus test's files:
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug
//   cmake --build build-fuzz --target zip_layout_fuzz
//   build-fuzz/src/archive/zip_layout_fuzz -max_total_time=60 \
//     -max_len=65536 /tmp/zip-fuzz-corpus src/archive/testdata/zip_corpus
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "archive/zip_layout.h"

namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir;
  fs::path zip;
  fs::path dest;
  Scratch() {
    dir = fs::temp_directory_path() / ("zip_layout_fuzz." + std::to_string(::getpid()));
    fs::create_directories(dir / "dest");
    zip = dir / "in.zip";
    dest = fs::canonical(dir / "dest");
    spdlog::set_level(spdlog::level::warn);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Scratch scratch;
  {
    std::ofstream out(scratch.zip, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  cw::UnpackLimits limits;
  limits.max_bytes = 10'000'000;
  limits.max_entries = 1000;
  cw::Result<cw::ZipLayout> layout = cw::ReadZipLayout(scratch.zip, limits);
  if (!layout.ok() && layout.status().code() != cw::Code::kInvalidInput) std::abort();
  cw::Result<cw::ZipHandle> za = cw::OpenCheckedZip(scratch.zip, limits);
  if (!za.ok()) return 0;
  cw::Result<cw::UnpackPlan> plan = cw::PlanUnpack(za->get(), scratch.zip, scratch.dest, limits);
  if (plan.ok()) {
    for (const cw::PlannedEntry& entry : plan->entries) {
      // Every planned name stays inside dest, relative and without "..".
      if (entry.relative.is_absolute()) std::abort();
      for (const fs::path& part : entry.relative) {
        if (part == "..") std::abort();
      }
    }
  }
  return 0;
}
