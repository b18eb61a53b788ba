#include "job/watchers.h"

#include <sys/fsuid.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "job/test_fakes.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FakeEngine;
using testing::FakeStorage;
using testing::RecordingReporter;
using namespace std::chrono_literals;

class WatchersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-watchers-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
    out_ = tmp_ / "output";
    fs::create_directories(out_);
    storage_ = std::make_unique<FakeStorage>(tmp_ / "store");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  DetailedResultsWatch Watch() {
    return {out_, tmp_ / "snapshot.html", "mem://detailed.html", *storage_, reporter_, 5ms, 0ms, 7};
  }

  fs::path tmp_, out_;
  std::unique_ptr<FakeStorage> storage_;
  RecordingReporter reporter_;
};

TEST_F(WatchersTest, StopWakesASleeperAtOnce) {
  StopSignal stop;
  EXPECT_TRUE(stop.SleepFor(1ms));
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.Stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(stop.SleepFor(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  stopper.join();
  EXPECT_TRUE(stop.stopped());
}

TEST_F(WatchersTest, TheDetailedResultsFileIsThePreferredOneElseTheFirstHtml) {
  EXPECT_FALSE(FindDetailedResultsFile(out_));
  std::ofstream(out_ / "b.html") << "b";
  std::ofstream(out_ / "a.html") << "a";
  fs::create_symlink(tmp_ / "elsewhere.html", out_ / "0.html");
  EXPECT_EQ(FindDetailedResultsFile(out_), out_ / "a.html");
  std::ofstream(out_ / "detailed_results.html") << "d";
  EXPECT_EQ(FindDetailedResultsFile(out_), out_ / "detailed_results.html");
}

TEST_F(WatchersTest, TheFinalVersionIsSentOnStop) {
  std::ofstream(out_ / "detailed_results.html") << "<p>1</p>";
  StopSignal stop;
  stop.Stop();  // stopped already: one final look only
  WatchDetailedResults(Watch(), stop);
  EXPECT_EQ(storage_->Read("mem://detailed.html"), "<p>1</p>");
  EXPECT_EQ(reporter_.detailed_updates, 1);
  WatchDetailedResults(Watch(), stop);  // a new watcher sends again; an unchanged file, once
  EXPECT_EQ(reporter_.detailed_updates, 2);
}

TEST_F(WatchersTest, ALinkIsNeverSent) {
  std::ofstream(tmp_ / "secret") << "secret-marker";
  fs::create_symlink(tmp_ / "secret", out_ / "detailed_results.html");
  StopSignal stop;
  stop.Stop();
  WatchDetailedResults(Watch(), stop);
  EXPECT_FALSE(storage_->WasPut("mem://detailed.html"));
  EXPECT_EQ(reporter_.detailed_updates, 0);
}

TEST_F(WatchersTest, DiskWatcherStopsAtTheLimitCountingTheLayers) {
  FakeEngine engine;
  engine.images.insert("img");
  ContainerSpec spec;
  spec.image = "img";
  spec.labels["org.codabench.kind"] = "program";
  auto id = engine.Create(spec);
  ASSERT_TRUE(id.ok());
  engine.writable_bytes = 600;
  std::ofstream(out_ / "written") << std::string(500, 'x');
  std::ofstream(out_ / "unpacked") << std::string(100, 'x');
  DiskWatch w{{out_}, 100, 1000, 5ms, engine, [&] { return std::vector<std::string>{*id}; }, 7, {}, nullptr};
  StopSignal stop;
  std::uintmax_t seen = 0;
  bool too_large = false;
  WatchDisk(w, stop, [&](std::uintmax_t b) { seen = b; }, [&] { too_large = true; });
  EXPECT_TRUE(too_large);
  EXPECT_EQ(seen, 1100u);  // 500 written + 600 in the container's layer
}

TEST_F(WatchersTest, DiskWatcherUnderTheLimitRunsUntilStopped) {
  FakeEngine engine;
  std::ofstream(out_ / "written") << std::string(500, 'x');
  DiskWatch w{{out_}, 0, 1000, 5ms, engine, [] { return std::vector<std::string>{}; }, 7, {}, nullptr};
  StopSignal stop;
  std::atomic<int> looks{0};
  bool too_large = false;
  std::thread watcher([&] {
    WatchDisk(w, stop, [&](std::uintmax_t) { ++looks; }, [&] { too_large = true; });
  });
  while (looks < 3) std::this_thread::sleep_for(1ms);
  stop.Stop();
  watcher.join();
  EXPECT_FALSE(too_large);
}

TEST_F(WatchersTest, AFolderTheWalkCannotListIsSizedByTheSandbox) {
  // A plain user's walk: the watcher's thread takes another file system
  // user (setfsuid is per thread, and drops the thread's DAC overrides).
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to play a plain user";
  fs::permissions(tmp_, fs::perms::all);
  fs::permissions(out_, fs::perms::all);
  std::ofstream(out_ / "seen") << std::string(500, 'x');
  fs::create_directories(out_ / "h");
  std::ofstream(out_ / "h" / "hidden") << std::string(5000, 'x');
  fs::permissions(out_ / "h", fs::perms::owner_all);  // 0700, root's
  FakeEngine engine;
  std::vector<fs::path> sized;
  DiskWatch w{{out_}, 0, 1000, 5ms, engine, [] { return std::vector<std::string>{}; }, 7, {},
              [&](const fs::path& d) -> Result<std::uint64_t> {
                sized.push_back(d);
                return std::uint64_t{8192};  // what the files take on disk
              }};
  StopSignal stop;
  std::uintmax_t seen = 0;
  bool too_large = false;
  std::thread plain_user([&] {
    ::setfsuid(65534);
    WatchDisk(w, stop, [&](std::uintmax_t b) { seen = b; }, [&] { too_large = true; });
  });
  plain_user.join();
  EXPECT_TRUE(too_large);
  EXPECT_EQ(seen, 8192u);
  EXPECT_EQ(sized, std::vector<fs::path>{out_});
}

TEST_F(WatchersTest, UsageKeepsTheHighestFiguresOfRunningPrograms) {
  FakeEngine engine;
  engine.images.insert("img");
  ContainerSpec spec;
  spec.image = "img";
  spec.labels["org.codabench.kind"] = "program";
  auto id = engine.Create(spec);
  ASSERT_TRUE(id.ok());
  engine.stats.memory_bytes = 100;
  engine.stats.memory_peak_bytes = 300;
  engine.stats.cpu_seconds = 2.5;
  std::atomic<bool> running{true}, done{false};
  ProgramUsage usage;
  StopSignal stop;
  std::thread sampler([&] { WatchUsage(engine, {{*id, &running, &done, &usage}}, 5ms, stop); });
  while (usage.peak_memory < 0) std::this_thread::sleep_for(1ms);
  stop.Stop();
  sampler.join();
  ProgramOutcome o;
  usage.Into(o);
  EXPECT_EQ(o.peak_memory_bytes, 300);
  EXPECT_EQ(o.cpu_seconds, 2.5);
  usage.Raise(200, 1.0);  // lower: kept
  EXPECT_EQ(usage.peak_memory, 300);
  ProgramUsage none;
  ProgramOutcome unsampled;
  none.Into(unsampled);
  EXPECT_FALSE(unsampled.peak_memory_bytes);
}

TEST_F(WatchersTest, AWatchersExceptionStaysInItsThread) {
  WatcherThreads watchers;
  std::atomic<bool> stopped_seen{false};
  watchers.Start("thrower", 7, [] { throw std::runtime_error("boom"); });
  const StopSignal& stop = watchers.stop();
  watchers.Start("sleeper", 7, [&] {
    while (stop.SleepFor(10s)) {
    }
    stopped_seen = true;
  });
  watchers.StopAndJoin();
  EXPECT_TRUE(stopped_seen);
}

}  // namespace
}  // namespace cw
