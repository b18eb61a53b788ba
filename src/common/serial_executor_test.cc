#include "common/serial_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace cw {
namespace {

using std::chrono::milliseconds;

template <typename Pred>
bool WaitFor(Pred pred, milliseconds limit = milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return pred();
}

// A task that waits until opened, so a test can hold the executor busy.
struct Gate {
  std::atomic<bool> open{false};
  std::atomic<bool> entered{false};
  SerialExecutor::Task task() {
    return [this] {
      entered = true;
      while (!open) std::this_thread::sleep_for(milliseconds(1));
    };
  }
};

TEST(SerialExecutor, RunsTasksInOrderOnOneThreadOfItsOwn) {
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  {
    SerialExecutor ex("test");
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(ex.Post([&, i] {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
        threads.push_back(std::this_thread::get_id());
      }));
    }
  }  // the destructor runs what is queued
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
  for (auto id : threads) {
    EXPECT_EQ(id, threads[0]);
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(SerialExecutor, ABoundedQueueRefusesPastItsBoundAndCountsTheRunningTask) {
  SerialExecutor ex("test", 2);
  Gate gate;
  ASSERT_TRUE(ex.Post(gate.task()));
  ASSERT_TRUE(WaitFor([&] { return gate.entered.load(); }));
  std::atomic<int> ran{0};
  EXPECT_TRUE(ex.Post([&] { ++ran; }));
  EXPECT_TRUE(ex.Post([&] { ++ran; }));
  EXPECT_FALSE(ex.Post([&] { ++ran; }));  // two waiting already
  EXPECT_EQ(ex.pending(), 3u);            // and one running
  gate.open = true;
  ASSERT_TRUE(WaitFor([&] { return ex.pending() == 0; }));
  EXPECT_EQ(ran, 2);
}

TEST(SerialExecutor, ShutdownRunRunsWhatIsQueuedAndThenRefuses) {
  SerialExecutor ex("test");
  Gate gate;
  std::atomic<int> ran{0};
  ASSERT_TRUE(ex.Post(gate.task()));
  ASSERT_TRUE(ex.Post([&] { ++ran; }));
  ASSERT_TRUE(ex.Post([&] { ++ran; }));
  gate.open = true;
  EXPECT_EQ(ex.Shutdown(SerialExecutor::Leftovers::kRun), 0u);
  EXPECT_EQ(ran, 2);
  EXPECT_FALSE(ex.Post([&] { ++ran; }));
  EXPECT_EQ(ex.Shutdown(SerialExecutor::Leftovers::kRun), 0u);  // again: nothing
}

TEST(SerialExecutor, ShutdownDropDropsTheQueuedAndWaitsForTheRunningOne) {
  SerialExecutor ex("test");
  Gate gate;
  std::atomic<int> ran{0};
  std::atomic<bool> first_done{false};
  ASSERT_TRUE(ex.Post([&] {
    gate.task()();
    first_done = true;
  }));
  ASSERT_TRUE(WaitFor([&] { return gate.entered.load(); }));
  ASSERT_TRUE(ex.Post([&] { ++ran; }));
  ASSERT_TRUE(ex.Post([&] { ++ran; }));
  std::thread opener([&] {
    std::this_thread::sleep_for(milliseconds(20));
    gate.open = true;
  });
  EXPECT_EQ(ex.Shutdown(SerialExecutor::Leftovers::kDrop), 2u);
  opener.join();
  EXPECT_TRUE(first_done);
  EXPECT_EQ(ran, 0);
}

TEST(SerialExecutor, DelayedTasksRunWhenDueAndAreDroppedAtShutdown) {
  SerialExecutor ex("test");
  std::mutex mu;
  std::vector<int> order;
  auto record = [&](int i) {
    return [&, i] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    };
  };
  ASSERT_TRUE(ex.PostAfter(milliseconds(60), record(1)));
  ASSERT_TRUE(ex.Post(record(2)));  // due now: runs first
  ASSERT_TRUE(ex.PostAfter(milliseconds(60000), record(3)));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return order.size() == 2;
  }));
  EXPECT_EQ(ex.Shutdown(SerialExecutor::Leftovers::kRun), 1u);  // the one a minute away
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
}

TEST(SerialExecutor, RepeatRunsEveryIntervalUntilShutdown) {
  SerialExecutor ex("test");
  std::atomic<int> ticks{0};
  ASSERT_TRUE(ex.Repeat(milliseconds(5), [&] { ++ticks; }));
  ASSERT_TRUE(WaitFor([&] { return ticks >= 3; }));
  auto t0 = std::chrono::steady_clock::now();
  ex.Shutdown(SerialExecutor::Leftovers::kRun);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1000));
  const int at_shutdown = ticks;
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(ticks, at_shutdown);
  EXPECT_FALSE(ex.Repeat(milliseconds(5), [] {}));
}

TEST(SerialExecutor, ATaskThatThrowsDoesNotEndTheThread) {
  SerialExecutor ex("test");
  std::atomic<bool> ran{false};
  ASSERT_TRUE(ex.Post([] { throw std::runtime_error("boom"); }));
  ASSERT_TRUE(ex.Post([] { throw 42; }));
  ASSERT_TRUE(ex.Post([&] { ran = true; }));
  ex.Shutdown(SerialExecutor::Leftovers::kRun);
  EXPECT_TRUE(ran);
}

TEST(SerialExecutor, ATaskMayPostAnother) {
  SerialExecutor ex("test");
  std::atomic<bool> second{false};
  ASSERT_TRUE(ex.Post([&] { (void)ex.Post([&] { second = true; }); }));
  ASSERT_TRUE(WaitFor([&] { return second.load(); }));
}

TEST(SerialExecutor, ATaskMayShutItDown) {
  std::atomic<int> ran{0};
  std::atomic<bool> shut{false};
  {
    SerialExecutor ex("test");
    ASSERT_TRUE(ex.PostAfter(milliseconds(200), [&] { ++ran; }));
    ASSERT_TRUE(ex.Post([&] {
      EXPECT_EQ(ex.Shutdown(SerialExecutor::Leftovers::kDrop), 1u);
      shut = true;
    }));
    ASSERT_TRUE(WaitFor([&] { return shut.load(); }));
    EXPECT_FALSE(ex.Post([] {}));
  }
  EXPECT_EQ(ran, 0);
}

}  // namespace
}  // namespace cw
