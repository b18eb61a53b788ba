// The output zip's cost per kind of content, and what deflating everything
// (as Python's zipfile does for the Python worker) would cost instead.
//
//   build/bench/zip_bench --benchmark_filter=. [--benchmark_min_time=2]
//
// Random bytes stand for weights, images and archives, which do not compress:
// CreateZip samples each file's first 64 KiB and stores it. Text stands for
// predictions and logs, which it deflates.
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "archive/zip.h"
#include "common/files.h"

namespace {
namespace fs = std::filesystem;

constexpr std::size_t kMiB = 1 << 20;

std::string RandomBytes(std::size_t n) {
  std::string s(n, '\0');
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

std::string Text(std::size_t n) {
  std::string s;
  s.reserve(n + 64);
  std::mt19937 rng(7);
  while (s.size() < n) s += "id_" + std::to_string(rng() % 100000) + "," + std::to_string(rng() % 1000 / 1000.0) + "\n";
  s.resize(n);
  return s;
}

// A folder holding one file of `content`, made once per benchmark.
struct Fixture {
  fs::path dir;
  explicit Fixture(const std::string& content) {
    auto made = cw::MakeUniqueDir(fs::temp_directory_path(), "cw-zip-bench-");
    if (!made.ok()) std::abort();
    dir = *made;
    fs::create_directories(dir / "out");
    std::ofstream(dir / "out" / "data.bin", std::ios::binary) << content;
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

void ZipFolder(benchmark::State& state, const std::string& content) {
  Fixture f(content);
  for (auto _ : state) {
    cw::Status st = cw::CreateZip(f.dir / "out", f.dir / "out.zip");
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * content.size()));
  state.counters["zip_MiB"] = static_cast<double>(fs::file_size(f.dir / "out.zip")) / kMiB;
}

void BM_CreateZip_Random(benchmark::State& state) {
  ZipFolder(state, RandomBytes(static_cast<std::size_t>(state.range(0)) * kMiB));
}
void BM_CreateZip_Text(benchmark::State& state) {
  ZipFolder(state, Text(static_cast<std::size_t>(state.range(0)) * kMiB));
}

// Deflating the same random bytes at zlib's default level, in memory: a floor
// for what a worker that deflates every file pays, before any file I/O.
void BM_DeflateEverything_Random(benchmark::State& state) {
  const std::string data = RandomBytes(static_cast<std::size_t>(state.range(0)) * kMiB);
  std::vector<unsigned char> out(compressBound(data.size()));
  for (auto _ : state) {
    uLongf len = out.size();
    if (compress2(out.data(), &len, reinterpret_cast<const Bytef*>(data.data()), data.size(),
                  Z_DEFAULT_COMPRESSION) != Z_OK) {
      state.SkipWithError("compress2 failed");
    }
    benchmark::DoNotOptimize(len);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

void BM_ExtractZip_Random(benchmark::State& state) {
  const std::string content = RandomBytes(static_cast<std::size_t>(state.range(0)) * kMiB);
  Fixture f(content);
  if (!cw::CreateZip(f.dir / "out", f.dir / "out.zip").ok()) std::abort();
  for (auto _ : state) {
    auto got = cw::ExtractZip(f.dir / "out.zip", f.dir / "unpacked");
    if (!got.ok()) state.SkipWithError(got.status().ToString().c_str());
    state.PauseTiming();
    fs::remove_all(f.dir / "unpacked");
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * content.size()));
}

BENCHMARK(BM_CreateZip_Random)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DeflateEverything_Random)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CreateZip_Text)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExtractZip_Random)->Arg(64)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
