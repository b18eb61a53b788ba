#include "report/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace cw {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::uint64_t kMB = 1000 * 1000;

// A display whose clock the test moves and whose output it reads.
struct FakeDisplay {
  SteadyTime t{};
  std::vector<std::string> out;
  ProgressDisplay display;

  explicit FakeDisplay(ProgressStyle style, int columns = 80) {
    display.style = style;
    display.write = [this](const std::string& s) { out.push_back(s); };
    display.columns = [columns] { return columns; };
    display.now = [this] { return t; };
  }
  void Advance(milliseconds d) { t += d; }
};

TEST(TransferMeterTest, RateOverTheWindowForgetsOlderSpeed) {
  SteadyTime t0{};
  TransferMeter m(t0, seconds(10));
  // 10 MB/s for 20 s, then stalled for 10 s.
  for (int s = 1; s <= 20; ++s) m.Record(t0 + seconds(s), s * 10 * kMB);
  EXPECT_NEAR(m.BytesPerSecond(), 10.0 * kMB, 1);
  for (int s = 21; s <= 30; ++s) m.Record(t0 + seconds(s), 200 * kMB);
  EXPECT_NEAR(m.BytesPerSecond(), 0, 1);
  EXPECT_EQ(m.Eta(400 * kMB), std::nullopt);  // no rate, no promise
}

TEST(TransferMeterTest, EtaIsWhatIsLeftAtTheRate) {
  SteadyTime t0{};
  TransferMeter m(t0, seconds(10));
  m.Record(t0 + seconds(4), 40 * kMB);
  EXPECT_NEAR(m.BytesPerSecond(), 10.0 * kMB, 1);
  EXPECT_EQ(m.Eta(100 * kMB), seconds(6));
  EXPECT_EQ(m.Eta(40 * kMB), std::nullopt);  // nothing left
  EXPECT_EQ(m.Eta(0), std::nullopt);         // total unknown
}

TEST(TransferMeterTest, ACountGoingBackRestartsTheWindow) {
  SteadyTime t0{};
  TransferMeter m(t0, seconds(10));
  m.Record(t0 + seconds(5), 50 * kMB);
  m.Record(t0 + seconds(6), 1 * kMB);  // a retry starts again from 0
  EXPECT_EQ(m.done(), 1 * kMB);
  EXPECT_EQ(m.BytesPerSecond(), 0);  // one sample, no span yet
  m.Record(t0 + seconds(8), 5 * kMB);
  EXPECT_NEAR(m.BytesPerSecond(), 2.0 * kMB, 1);
}

TEST(ProgressFormatTest, BytesAndDurations) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(999), "999 B");
  EXPECT_EQ(FormatBytes(1500), "1.5 kB");
  EXPECT_EQ(FormatBytes(45 * kMB), "45.0 MB");
  EXPECT_EQ(FormatBytes(3400 * kMB), "3.40 GB");
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(8)), "8s");
  EXPECT_EQ(FormatDuration(milliseconds(430)), "0.4s");
  EXPECT_EQ(FormatDuration(milliseconds(9940)), "9.9s");
  EXPECT_EQ(FormatDuration(seconds(12)), "12s");
  EXPECT_EQ(FormatDuration(seconds(185)), "3m05s");
  EXPECT_EQ(FormatDuration(seconds(3720)), "1h02m");
}

ProgressSnapshot Pull() {
  ProgressSnapshot s;
  s.label = "pulling image example/big";
  s.done = 1200 * kMB;
  s.total = 3400 * kMB;
  s.bytes_per_second = 45 * kMB;
  s.eta = seconds(49);
  s.elapsed = seconds(27);
  s.detail = "2/5 layers";
  return s;
}

TEST(ProgressFormatTest, LogLineHasBytesPercentRateEtaAndDetail) {
  EXPECT_EQ(ProgressLogLine(Pull()),
            "pulling image example/big: 1.20 GB of 3.40 GB (35%), 45.0 MB/s, 49s left, 2/5 layers");
}

TEST(ProgressFormatTest, WithoutAKnownTotalNoPercentNoEta) {
  ProgressSnapshot s = Pull();
  s.total = 0;
  s.detail.clear();
  EXPECT_EQ(ProgressLogLine(s), "pulling image example/big: 1.20 GB, 45.0 MB/s");
  s.total = 1300 * kMB;
  s.total_partial = true;  // layers still unsized: a lower bound
  EXPECT_EQ(ProgressLogLine(s), "pulling image example/big: 1.20 GB of 1.30 GB+, 45.0 MB/s");
}

TEST(ProgressFormatTest, FinalLineHasTotalTimeAndAverageRate) {
  ProgressSnapshot s = Pull();
  s.done = 3400 * kMB;
  s.elapsed = seconds(68);
  s.detail = "5/5 layers";
  EXPECT_EQ(ProgressFinalLine(s, true),
            "pulling image example/big: done, 3.40 GB in 1m08s (50.0 MB/s), 5/5 layers");
  EXPECT_EQ(ProgressFinalLine(Pull(), false),
            "pulling image example/big: stopped after 1.20 GB in 27s");
}

TEST(ProgressFormatTest, BarFillsTheTerminalWidthLessOneColumn) {
  std::string line = ProgressBarLine(Pull(), 100);
  ASSERT_THAT(line, StartsWith("\r"));
  EXPECT_EQ(line.size(), 1u + 99u);
  EXPECT_THAT(line, HasSubstr("pulling image example/big ["));
  // The percentage is padded to three digits, so the line does not jump at 10% and 100%.
  EXPECT_THAT(line, HasSubstr("]   35%  1.20 GB/3.40 GB  45.0 MB/s  ETA 49s  2/5 layers"));
  // 35% of the bar is filled.
  auto open = line.find('['), close = line.find(']');
  std::string bar = line.substr(open + 1, close - open - 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '#'), static_cast<long>(bar.size() * 35 / 100));
}

TEST(ProgressFormatTest, NarrowTerminalCutsTheLabelAndDropsTheBarButNeverWraps) {
  for (int columns : {20, 40, 60}) {
    std::string line = ProgressBarLine(Pull(), columns);
    EXPECT_EQ(line.size(), static_cast<size_t>(columns)) << columns;  // "\r" + columns - 1
    EXPECT_EQ(line.find('\n'), std::string::npos);
  }
  EXPECT_THAT(ProgressBarLine(Pull(), 60), Not(HasSubstr("[")));
}

TEST(ProgressFormatTest, BarWithoutTotalShowsBytesAndRate) {
  ProgressSnapshot s = Pull();
  s.total = 0;
  s.detail.clear();
  std::string line = ProgressBarLine(s, 80);
  EXPECT_THAT(line, StartsWith("\rpulling image example/big  1.20 GB  45.0 MB/s "));
  EXPECT_EQ(line.find('['), std::string::npos);
}

TEST(TransferProgressTest, LinesStartAfterTheDelayThenEveryFewSecondsThenTheEnd) {
  FakeDisplay f(ProgressStyle::kLines);
  TransferProgress p(f.display, "downloading the input data");
  for (int i = 1; i <= 100; ++i) {  // 10 MB/s for 10 s, an update every 100 ms
    f.Advance(milliseconds(100));
    p.Update(i * kMB, 100 * kMB);
  }
  p.Finish(true);
  EXPECT_THAT(
      f.out,
      ElementsAre("downloading the input data: 20.0 MB of 100.0 MB (20%), 10.0 MB/s, 8s left",
                  "downloading the input data: 70.0 MB of 100.0 MB (70%), 10.0 MB/s, 3s left",
                  "downloading the input data: done, 100.0 MB in 10s (10.0 MB/s)"));
}

TEST(TransferProgressTest, AShortTransferShowsNothing) {
  FakeDisplay f(ProgressStyle::kLines);
  {
    TransferProgress p(f.display, "downloading the submission");
    f.Advance(milliseconds(300));
    p.Update(1000, 1000);
    p.Finish(true);
  }
  FakeDisplay bar(ProgressStyle::kBar);
  {
    TransferProgress p(bar.display, "downloading the submission");
    bar.Advance(milliseconds(300));
    p.Update(1000, 1000);
    p.Finish(true);
  }
  EXPECT_TRUE(f.out.empty());
  EXPECT_TRUE(bar.out.empty());
}

TEST(TransferProgressTest, ALongSilentTransferStillGetsItsFinalLine) {
  FakeDisplay f(ProgressStyle::kLines);
  TransferProgress p(f.display, "downloading the reference data");
  f.Advance(milliseconds(500));
  p.Update(5 * kMB, 0);  // before the delay: nothing shown
  f.Advance(seconds(3));
  p.Finish(false);
  EXPECT_THAT(f.out, ElementsAre("downloading the reference data: stopped after 5.0 MB in 3.5s"));
}

TEST(TransferProgressTest, NothingMovedNothingSaid) {
  FakeDisplay f(ProgressStyle::kLines);
  TransferProgress p(f.display, "downloading the input data");  // found in the cache
  f.Advance(seconds(3));
  p.Finish(true);
  EXPECT_TRUE(f.out.empty());
}

TEST(TransferProgressTest, BarRedrawsAtMostEveryRedrawIntervalAndIsClearedAtTheEnd) {
  FakeDisplay f(ProgressStyle::kBar, 100);
  f.display.start_after = milliseconds(500);
  TransferProgress p(f.display, "pulling image x");
  for (int i = 1; i <= 20; ++i) {  // every 50 ms for 1 s
    f.Advance(milliseconds(50));
    p.Update(i * kMB, 20 * kMB);
  }
  p.Finish(true);
  // From 0.5 s to 1 s every 200 ms: 0.5, 0.7, 0.9; then the clearing.
  ASSERT_EQ(f.out.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(f.out[i], StartsWith("\rpulling image x ["));
    EXPECT_EQ(f.out[i].size(), 100u);
  }
  EXPECT_THAT(f.out[0], HasSubstr(" 50%  10.0 MB/20.0 MB"));
  EXPECT_EQ(f.out[3], "\r" + std::string(99, ' ') + "\r");
}

TEST(TransferProgressTest, FinishCountsOnceAndLaterUpdatesAreIgnored) {
  FakeDisplay f(ProgressStyle::kLines);
  f.display.start_after = milliseconds(0);
  TransferProgress p(f.display, "x");
  f.Advance(seconds(1));
  p.Update(1, 1);
  p.Finish(true);
  ASSERT_EQ(f.out.size(), 2u);  // the update's line and the final one
  f.Advance(seconds(10));
  p.Finish(false);
  p.Update(2, 2);
  EXPECT_EQ(f.out.size(), 2u);
}

TEST(TransferProgressTest, AThrowingWriterNeverReachesTheTransfer) {
  ProgressDisplay d;
  d.start_after = milliseconds(0);
  d.write = [](const std::string&) { throw std::runtime_error("terminal gone"); };
  TransferProgress p(d, "x");
  EXPECT_NO_THROW(p.Update(1, 2));
  EXPECT_NO_THROW(p.Finish(true));
}

TEST(TransferProgressTest, NoDisplayNoWork) {
  ProgressDisplay d;  // no writer
  TransferProgress p(d, "x");
  p.Update(1, 2);
  p.Finish(true);
  SUCCEED();
}

PullProgress Msg(std::string id, std::string status, long long current = 0, long long total = 0) {
  PullProgress p;
  p.layer_id = std::move(id);
  p.status = std::move(status);
  p.current = current;
  p.total = total;
  return p;
}

TEST(PullTallyTest, SumsLayersAndKnowsWhenSizesAreStillOpen) {
  PullTally t;
  t.Add(Msg("latest", "Pulling from library/python"));  // the tag, not a layer
  t.Add(Msg("aaa", "Already exists"));
  t.Add(Msg("bbb", "Pulling fs layer"));
  t.Add(Msg("ccc", "Pulling fs layer"));
  t.Add(Msg("ccc", "Waiting"));
  t.Add(Msg("bbb", "Downloading", 10 * kMB, 40 * kMB));
  EXPECT_EQ(t.done(), 10 * kMB);
  EXPECT_EQ(t.total(), 40 * kMB);
  EXPECT_TRUE(t.total_partial());  // ccc has no size yet
  EXPECT_EQ(t.Detail(), "1/3 layers");

  t.Add(Msg("ccc", "Downloading", 5 * kMB, 60 * kMB));
  t.Add(Msg("bbb", "Download complete"));
  EXPECT_EQ(t.done(), 45 * kMB);
  EXPECT_EQ(t.total(), 100 * kMB);
  EXPECT_FALSE(t.total_partial());

  t.Add(Msg("bbb", "Extracting", 20 * kMB, 40 * kMB));  // extraction bytes are not download bytes
  t.Add(Msg("bbb", "Pull complete"));
  t.Add(Msg("ccc", "Retrying in 5 seconds"));
  EXPECT_EQ(t.done(), 40 * kMB);
  t.Add(Msg("ccc", "Downloading", 60 * kMB, 60 * kMB));
  t.Add(Msg("ccc", "Pull complete"));
  t.Add(Msg("", "Digest: sha256:0123"));
  t.Add(Msg("", "Status: Downloaded newer image for python"));
  EXPECT_EQ(t.done(), 100 * kMB);
  EXPECT_EQ(t.total(), 100 * kMB);
  EXPECT_EQ(t.Detail(), "3/3 layers");
}

TEST(PullTallyTest, ASmallLayerDoneWithoutSizeDoesNotKeepTheTotalOpen) {
  PullTally t;
  t.Add(Msg("aaa", "Pulling fs layer"));
  t.Add(Msg("aaa", "Download complete"));  // too small to report Downloading
  t.Add(Msg("bbb", "Downloading", 1, 2));
  EXPECT_FALSE(t.total_partial());
  EXPECT_EQ(t.Detail(), "0/2 layers");
}

}  // namespace
}  // namespace cw
