#include "metrics/registry.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace cw::metrics {
namespace {

TEST(Registry, RendersCountersAndGaugesWithHelpAndType) {
  Registry r;
  int jobs = r.Counter("cw_jobs_total", "Jobs done.", {"stage", "outcome"});
  int up = r.Gauge("cw_up", "Up or not.");
  r.Inc(jobs, {"scoring", "failed"});
  r.Inc(jobs, {"prediction", "succeeded"}, 2);
  r.Set(up, 1);
  EXPECT_EQ(r.Render(),
            "# HELP cw_jobs_total Jobs done.\n"
            "# TYPE cw_jobs_total counter\n"
            "cw_jobs_total{stage=\"prediction\",outcome=\"succeeded\"} 2\n"
            "cw_jobs_total{stage=\"scoring\",outcome=\"failed\"} 1\n"
            "# HELP cw_up Up or not.\n"
            "# TYPE cw_up gauge\n"
            "cw_up 1\n");
  EXPECT_EQ(r.Value(jobs, {"prediction", "succeeded"}), 2);
  EXPECT_EQ(r.Value(jobs, {"nope", "no"}), 0);
}

TEST(Registry, CountersNeverGoDownAndWrongLabelCountsAreIgnored) {
  Registry r;
  int c = r.Counter("c_total", "c", {"a"});
  r.Inc(c, {"x"}, 3);
  r.Inc(c, {"x"}, -1);
  r.Inc(c, {"x", "y"});
  r.Inc(c, {});
  EXPECT_EQ(r.Value(c, {"x"}), 3);
  EXPECT_EQ(r.Render(), "# HELP c_total c\n# TYPE c_total counter\nc_total{a=\"x\"} 3\n");
}

TEST(Registry, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");
  Registry r;
  int g = r.Gauge("g", "line one\nline \\two", {"v"});
  r.Set(g, {"say \"hi\"\n"}, 2.5);
  EXPECT_EQ(r.Render(),
            "# HELP g line one\\nline \\\\two\n# TYPE g gauge\ng{v=\"say \\\"hi\\\"\\n\"} 2.5\n");
}

TEST(Registry, FormatsSpecialValues) {
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

TEST(Registry, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  int h = r.Histogram("t_seconds", "Time.", {"step"}, {1, 0.5, 5});  // sorted on registration
  r.Observe(h, {"fetch"}, 0.2);
  r.Observe(h, {"fetch"}, 0.5);  // on a bound: in that bucket (le)
  r.Observe(h, {"fetch"}, 3);
  r.Observe(h, {"fetch"}, 100);
  EXPECT_EQ(r.Render(),
            "# HELP t_seconds Time.\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{step=\"fetch\",le=\"0.5\"} 2\n"
            "t_seconds_bucket{step=\"fetch\",le=\"1\"} 2\n"
            "t_seconds_bucket{step=\"fetch\",le=\"5\"} 3\n"
            "t_seconds_bucket{step=\"fetch\",le=\"+Inf\"} 4\n"
            "t_seconds_sum{step=\"fetch\"} 103.7\n"
            "t_seconds_count{step=\"fetch\"} 4\n");
}

TEST(Registry, HistogramWithoutLabels) {
  Registry r;
  int h = r.Histogram("h", "H.", {}, {1});
  r.Observe(h, {}, 2);
  EXPECT_EQ(r.Render(),
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\n"
            "h_sum 2\nh_count 1\n");
}

TEST(Registry, GaugeFnIsReadAtRender) {
  Registry r;
  double v = 1;
  r.GaugeFn("busy", "Busy.", [&v] { return v; });
  v = 7;
  EXPECT_EQ(r.Render(), "# HELP busy Busy.\n# TYPE busy gauge\nbusy 7\n");
}

TEST(Registry, FamiliesWithoutSeriesStillSayWhatTheyAre) {
  Registry r;
  r.Counter("none_total", "Nothing yet.", {"stage"});
  EXPECT_EQ(r.Render(), "# HELP none_total Nothing yet.\n# TYPE none_total counter\n");
}

TEST(Registry, IsThreadSafe) {
  Registry r;
  int c = r.Counter("c_total", "c", {"t"});
  int h = r.Histogram("h", "h", {}, DurationBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        r.Inc(c, {"x"});
        r.Observe(h, {}, 0.3);
        if (i % 1000 == 0) (void)r.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.Value(c, {"x"}), 40000);
  EXPECT_NE(r.Render().find("h_count 40000\n"), std::string::npos);
}

TEST(Registry, ResidentMemoryIsReadFromProc) {
  EXPECT_GT(ResidentMemoryBytes(), 1024 * 1024);
}

}  // namespace
}  // namespace cw::metrics
