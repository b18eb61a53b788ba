#include "common/env.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"
#include "common/test_env.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestEnv;

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-env-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
  }
  void TearDown() override { fs::remove_all(tmp_); }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  fs::path tmp_;
};

TEST_F(EnvTest, WritesSeeksSetsTheModeAndCloses) {
  Env& env = Env::Default();
  auto file = env.NewWritableFile(tmp_ / "f", {});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Write("hello world", 11).ok());
  EXPECT_EQ((*file)->Tell(), 11u);
  ASSERT_TRUE((*file)->Seek(0).ok());
  ASSERT_TRUE((*file)->Write("J", 1).ok());
  ASSERT_TRUE((*file)->SetMode(0751).ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Read(tmp_ / "f"), "Jello world");
  struct stat st;
  ASSERT_EQ(::stat((tmp_ / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
}

TEST_F(EnvTest, ExclusiveRefusesWhatIsThereAndNoLinkIsFollowed) {
  Env& env = Env::Default();
  std::ofstream(tmp_ / "taken") << "x";
  fs::create_symlink(tmp_ / "target", tmp_ / "link");
  auto taken = env.NewWritableFile(tmp_ / "taken", {true, 0644, "taken"});
  EXPECT_EQ(taken.status().code(), Code::kAlreadyExists);
  auto link = env.NewWritableFile(tmp_ / "link", {false, 0644, "link"});
  EXPECT_EQ(link.status().code(), Code::kInvalidInput);
  EXPECT_FALSE(fs::exists(tmp_ / "target"));
  auto missing = env.NewWritableFile(tmp_ / "no" / "such", {false, 0644, "such"});
  EXPECT_EQ(missing.status().code(), Code::kIo);
  EXPECT_THAT(missing.status().message(), Not(HasSubstr(tmp_.string())));
}

TEST_F(EnvTest, RenameAndRemove) {
  Env& env = Env::Default();
  std::ofstream(tmp_ / "a") << "x";
  ASSERT_TRUE(env.RenameFile(tmp_ / "a", tmp_ / "b").ok());
  EXPECT_EQ(Read(tmp_ / "b"), "x");
  ASSERT_TRUE(env.RemoveFile(tmp_ / "b").ok());
  EXPECT_TRUE(env.RemoveFile(tmp_ / "b").ok());  // nothing there is fine
  Status st = env.RenameFile(tmp_ / "a", tmp_ / "c");
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_THAT(st.message(), Not(HasSubstr(tmp_.string())));
}

TEST_F(EnvTest, TheNthWriteFailsOnceWithTheErrnoGiven) {
  TestEnv env;
  env.FailNthWrite(2, ENOSPC);
  auto file = env.NewWritableFile(tmp_ / "f", {false, 0600, "f"});
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Write("a", 1).ok());
  Status second = (*file)->Write("b", 1);
  EXPECT_EQ(second.code(), Code::kIo);
  EXPECT_EQ(second.message(), "cannot write f: no space left on the worker's disk");
  EXPECT_TRUE((*file)->Write("c", 1).ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Read(tmp_ / "f"), "ac");
  EXPECT_EQ(env.writes(), 3);
  EXPECT_EQ(env.injected(), 1);
}

TEST_F(EnvTest, WritesToMatchingPathsFail) {
  TestEnv env;
  env.FailWritesTo("*/output/metadata", EIO);
  fs::create_directories(tmp_ / "output");
  auto meta = env.NewWritableFile(tmp_ / "output" / "metadata", {});
  auto other = env.NewWritableFile(tmp_ / "output" / "other", {});
  ASSERT_TRUE(meta.ok() && other.ok());
  EXPECT_THAT((*meta)->Write("x", 1).message(), HasSubstr("Input/output error"));
  EXPECT_TRUE((*other)->Write("x", 1).ok());
}

TEST_F(EnvTest, TheManualClockMovesOnlyWhenAdvanced) {
  TestEnv env;
  env.UseManualClock();
  auto t0 = env.Now();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(env.Now(), t0);
  env.Advance(std::chrono::seconds(30));
  EXPECT_EQ(env.Now() - t0, std::chrono::seconds(30));
}

TEST_F(EnvTest, AWaitOnTheManualClockEndsWhenTimeIsAdvancedPastIt) {
  TestEnv env;
  env.UseManualClock();
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_FALSE(WaitUntilOr(env, cv, lock, env.Now() + std::chrono::hours(1), [] { return false; }));
    woke = true;
  });
  ASSERT_TRUE(env.AwaitSleepers(1));
  env.Advance(std::chrono::minutes(59));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(woke);
  env.Advance(std::chrono::minutes(1));
  waiter.join();
  EXPECT_TRUE(woke);
}

TEST_F(EnvTest, AWaitEndsWhenItsConditionComesTrue) {
  Env& env = Env::Default();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread notifier([&] {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_TRUE(WaitUntilOr(env, cv, lock, env.Now() + std::chrono::seconds(30), [&] { return done; }));
  lock.unlock();
  notifier.join();
}

// A notification as the waiter's slice of real time ends is not lost.
TEST_F(EnvTest, ANotificationDuringAManualWaitIsNeverLost) {
  TestEnv env;
  env.UseManualClock();
  for (int i = 0; i < 200; ++i) {
    std::mutex mu;
    std::condition_variable cv;
    bool stopped = false;
    std::thread waiter([&] {
      std::unique_lock<std::mutex> lock(mu);
      EXPECT_TRUE(WaitUntilOr(env, cv, lock, env.Now() + std::chrono::hours(1),
                              [&] { return stopped; }));
    });
    std::this_thread::sleep_for(std::chrono::microseconds(i * 10));
    {
      std::lock_guard<std::mutex> lock(mu);
      stopped = true;
      cv.notify_all();
    }
    waiter.join();
  }
}

}  // namespace
}  // namespace cw
