#include "worker/bad_job_reports.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "common/abandon.h"
#include "worker/test_helpers.h"

namespace cw {
namespace {
using worker_testing::WaitFor;

// A site that holds each report until released, honouring AbandonScope as
// the HTTP client's retries do.
struct HeldSite {
  std::atomic<bool> hold{true};
  std::atomic<int> entered{0};
  std::mutex mu;
  std::vector<std::string> reasons;
  std::set<std::thread::id> threads;
  BadJobFn fn() {
    return [this](const nlohmann::json&, const std::string& reason) {
      ++entered;
      while (hold) {
        if (AbandonScope::Abandoned()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::lock_guard<std::mutex> lock(mu);
      reasons.push_back(reason);
      threads.insert(std::this_thread::get_id());
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return reasons.size();
  }
};

TEST(BadJobReports, AreSentOffTheCallersThreadAndBounded) {
  HeldSite site;
  BadJobReports reports(site.fn(), 2);
  reports.Queue({{"id", 1}}, "r1");
  ASSERT_TRUE(WaitFor([&] { return site.entered == 1; }));
  for (int i = 2; i <= 6; ++i) reports.Queue({{"id", i}}, "r" + std::to_string(i));
  EXPECT_EQ(reports.pending(), 3);  // one at the site, two waiting; the rest dropped
  site.hold = false;
  ASSERT_TRUE(WaitFor([&] { return site.count() == 3; }));
  ASSERT_TRUE(WaitFor([&] { return reports.pending() == 0; }));
  std::lock_guard<std::mutex> lock(site.mu);
  EXPECT_EQ(site.reasons, (std::vector<std::string>{"r1", "r2", "r3"}));
  EXPECT_FALSE(site.threads.count(std::this_thread::get_id()));
}

TEST(BadJobReports, AbandonStopsTheReportAtTheSiteAndDropsTheRest) {
  HeldSite site;
  BadJobReports reports(site.fn(), 10);
  reports.Queue({{"id", 1}}, "r1");
  reports.Queue({{"id", 2}}, "r2");
  ASSERT_TRUE(WaitFor([&] { return site.entered == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  reports.Abandon();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(site.count(), 0u);
  EXPECT_EQ(site.entered, 1);
  reports.Queue({{"id", 3}}, "r3");  // nothing more goes out
  EXPECT_EQ(reports.pending(), 0);
}

TEST(BadJobReports, WithoutAFunctionNothingIsQueued) {
  BadJobReports reports({}, 10);
  reports.Queue({{"id", 1}}, "r1");
  EXPECT_EQ(reports.pending(), 0);
}

}  // namespace
}  // namespace cw
