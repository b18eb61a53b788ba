#include "worker/shutdown.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

using std::chrono::milliseconds;

struct FakeWorker {
  std::atomic<int> stop{0};
  std::atomic<bool> quit{false};
  int busy = 0, running = 0, ticks = 0, drains = 0;
  std::function<void(FakeWorker&)> on_tick;
  DrainHooks Hooks() {
    return {[this] {
              ++ticks;
              if (on_tick) on_tick(*this);
            },
            [this] { ++drains; }, [this] { return busy; }, [this] { return running; }};
  }
};

TEST(Shutdown, OneSignalDrainsUntilNothingIsBusy) {
  FakeWorker w;
  w.busy = w.running = 2;
  w.on_tick = [](FakeWorker& w) {
    if (w.ticks == 3) w.stop = 1;
    if (w.ticks == 6) w.busy = w.running = 1;
    if (w.ticks == 9) w.busy = w.running = 0;
  };
  EXPECT_EQ(WaitForShutdown(w.stop, w.quit, std::nullopt, w.Hooks(), milliseconds(1)),
            ShutdownKind::kWarm);
  EXPECT_EQ(w.drains, 1);
  EXPECT_EQ(w.ticks, 9);
}

TEST(Shutdown, ASecondSignalOrQuitTurnsItCold) {
  FakeWorker w;
  w.busy = w.running = 1;
  w.on_tick = [](FakeWorker& w) {
    if (w.ticks == 2) w.stop = 1;
    if (w.ticks == 4) w.stop = 2;
  };
  EXPECT_EQ(WaitForShutdown(w.stop, w.quit, std::nullopt, w.Hooks(), milliseconds(1)),
            ShutdownKind::kCold);
  EXPECT_EQ(w.drains, 1);
  FakeWorker q;
  q.quit = true;
  EXPECT_EQ(WaitForShutdown(q.stop, q.quit, std::nullopt, q.Hooks(), milliseconds(1)),
            ShutdownKind::kCold);
  EXPECT_EQ(q.drains, 0);
}

TEST(Shutdown, TheTimeoutTurnsTheDrainCold) {
  FakeWorker w;
  w.busy = w.running = 1;
  w.stop = 1;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(WaitForShutdown(w.stop, w.quit, 0.05, w.Hooks(), milliseconds(1)), ShutdownKind::kCold);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(50));
}

TEST(Shutdown, TheWaitLineSaysWhatItWaitsFor) {
  EXPECT_EQ(DrainWaitLine(1, 1, std::nullopt),
            "warm shutdown: waiting for 1 running job (send SIGTERM again to stop them)");
  EXPECT_EQ(DrainWaitLine(2, 5, 30.0),
            "warm shutdown: waiting for 2 running jobs and 3 reports to the site (send SIGTERM "
            "again to stop them); at most 30 s");
}

}  // namespace
}  // namespace cw
