#include "job/program_exit.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

ProgramEnd End(ProgramKind kind, const std::string& label, std::optional<int> code) {
  ProgramEnd e;
  e.kind = kind;
  e.label = label;
  e.outcome.exit_code = code;
  return e;
}

TEST(ProgramExitTest, TextsOfUsageAndSizes) {
  EXPECT_EQ(FormatMiB(512LL << 20), "512 MiB");
  EXPECT_EQ(FormatMiB(2LL << 30), "2 GiB");
  EXPECT_EQ(FormatMiB((2LL << 30) + (1LL << 20)), "2049 MiB");
  ProgramOutcome o;
  EXPECT_EQ(DescribeUsage(o), "no usage figures from the engine");
  o.peak_memory_bytes = 212LL << 20;
  EXPECT_EQ(DescribeUsage(o), "peak memory 212 MiB");
  o.cpu_seconds = 3.44;
  EXPECT_EQ(DescribeUsage(o), "peak memory 212 MiB, CPU 3.4 s");
}

TEST(ProgramExitTest, SignalNames) {
  EXPECT_EQ(SignalName(9), "SIGKILL");
  EXPECT_EQ(SignalName(15), "SIGTERM");
  EXPECT_EQ(SignalName(1000), "");
}

TEST(ProgramExitTest, FailedDetailsHaveThePythonWorkersShape) {
  EXPECT_EQ(SubmissionFailedDetails("The submission exited with code 1"),
            "Submission failed: The submission exited with code 1. See logs for more details.");
  EXPECT_EQ(SubmissionFailedDetails("Bad zip. \n"),
            "Submission failed: Bad zip. See logs for more details.");
  EXPECT_EQ(SubmissionFailedDetails(""), "Submission failed. See logs for more details.");
}

TEST(ProgramExitTest, ExitStatusSaysOutOfMemorySignalOrCode) {
  ProgramEnd e = End(ProgramKind::kProgram, "submission", 137);
  EXPECT_EQ(ProgramExitStatus(e, 0).message(), "The submission was killed by SIGKILL (exit code 137)");
  e.oom_killed = true;
  EXPECT_EQ(ProgramExitStatus(e, 256LL << 20).message(),
            "The submission ran out of memory (limit 256 MiB) and was stopped (exit code 137)");
  EXPECT_EQ(ProgramExitStatus(e, 0).message(),
            "The submission ran out of memory (limit the host's memory) and was stopped (exit code 137)");
  // Where the engine never says (Podman 4.3), a SIGKILL under a memory
  // limit names the limit as the likely cause, and only then.
  e.oom_killed = false;
  e.oom_unknown = true;
  EXPECT_EQ(ProgramExitStatus(e, 256LL << 20).message(),
            "The submission was killed by SIGKILL (exit code 137), most likely at its memory "
            "limit (256 MiB): this worker's container engine does not say whether it ran out of "
            "memory");
  EXPECT_EQ(ProgramExitStatus(e, 0).message(), "The submission was killed by SIGKILL (exit code 137)");
  e.outcome.exit_code = 143;
  EXPECT_EQ(ProgramExitStatus(e, 256LL << 20).message(),
            "The submission was killed by SIGTERM (exit code 143)");
  e = End(ProgramKind::kIngestion, "ingestion program", 2);
  EXPECT_EQ(ProgramExitStatus(e, 0).code(), Code::kInvalidInput);
  EXPECT_EQ(ProgramExitStatus(e, 0).message(), "The ingestion program exited with code 2");
}

class VerdictTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-exit-test-");
    ASSERT_TRUE(dir.ok());
    tmp_ = *dir;
  }
  void TearDown() override { fs::remove_all(tmp_); }
  fs::path Metadata(const std::string& text) {
    std::ofstream(tmp_ / "metadata") << text;
    return tmp_ / "metadata";
  }
  fs::path tmp_;
};

TEST_F(VerdictTest, PredictionExitCodesAreToleratedInOrder) {
  std::vector<ProgramEnd> ends = {End(ProgramKind::kProgram, "submission", 1),
                                  End(ProgramKind::kIngestion, "ingestion program", 3)};
  ExitVerdict v = JudgeProgramEnds(ends, false, 0, tmp_ / "none");
  EXPECT_TRUE(v.status.ok());
  EXPECT_THAT(v.tolerated, ElementsAre("The submission exited with code 1",
                                       "The ingestion program exited with code 3"));
}

TEST_F(VerdictTest, ScoringProgramsExitFailsAndNamesTheEarlierOnes) {
  std::vector<ProgramEnd> ends = {End(ProgramKind::kProgram, "scoring program", 1),
                                  End(ProgramKind::kIngestion, "ingestion program", 4)};
  fs::path meta = Metadata("exitCode: 2\ningestionExitCode: 0\nelapsedTime: 1.0\n");
  ExitVerdict v = JudgeProgramEnds(ends, true, 0, meta);
  EXPECT_EQ(v.status.message(),
            "The scoring program exited with code 1; the ingestion program exited with code 4; "
            "the submission exited with code 2 in the prediction step");
  EXPECT_THAT(v.tolerated, IsEmpty());
  EXPECT_EQ(EarlierExitNote({}, Metadata("not: [yaml")), "");
  EXPECT_EQ(EarlierExitNote({}, tmp_ / "none"), "");
}

TEST_F(VerdictTest, ScoringWithOnlyTheIngestionFailingGoesOn) {
  std::vector<ProgramEnd> ends = {End(ProgramKind::kProgram, "scoring program", 0),
                                  End(ProgramKind::kIngestion, "ingestion program", 4)};
  ExitVerdict v = JudgeProgramEnds(ends, true, 0, tmp_ / "none");
  EXPECT_TRUE(v.status.ok());
  EXPECT_THAT(v.tolerated, ElementsAre("The ingestion program exited with code 4"));
}

TEST_F(VerdictTest, WhereTheEngineCannotTellASigkillUnderAMemoryLimitFailsThePrediction) {
  std::vector<ProgramEnd> ends = {End(ProgramKind::kProgram, "submission", 137)};
  ends[0].oom_unknown = true;  // Podman 4.3
  ExitVerdict v = JudgeProgramEnds(ends, false, 256LL << 20, tmp_ / "none");
  EXPECT_EQ(v.status.message(),
            "The submission was killed by SIGKILL (exit code 137), most likely at its memory "
            "limit (256 MiB): this worker's container engine does not say whether it ran out of "
            "memory");
  // No limit set: only an exit code, tolerated in the prediction step.
  v = JudgeProgramEnds(ends, false, 0, tmp_ / "none");
  EXPECT_TRUE(v.status.ok());
  EXPECT_THAT(v.tolerated, ElementsAre("The submission was killed by SIGKILL (exit code 137)"));
  // Docker says when it was not: then too.
  ends[0].oom_unknown = false;
  v = JudgeProgramEnds(ends, false, 256LL << 20, tmp_ / "none");
  EXPECT_TRUE(v.status.ok());
}

TEST_F(VerdictTest, AnErrorThenOutOfMemoryComeBeforeExitCodes) {
  std::vector<ProgramEnd> ends = {End(ProgramKind::kProgram, "submission", 1),
                                  End(ProgramKind::kIngestion, "ingestion program", 137)};
  ends[1].oom_killed = true;
  ExitVerdict v = JudgeProgramEnds(ends, false, 1LL << 30, tmp_ / "none");
  EXPECT_EQ(v.status.message(),
            "The ingestion program ran out of memory (limit 1 GiB) and was stopped (exit code 137)");
  ends[0].error = Unavailable("The submission could not run: no");
  v = JudgeProgramEnds(ends, false, 0, tmp_ / "none");
  EXPECT_EQ(v.status.message(), "The submission could not run: no");
  EXPECT_THAT(v.tolerated, IsEmpty());
}

TEST(ProgramExitTest, LimitMessages) {
  EXPECT_EQ(TimeLimitMessage(30), "Execution Time Limit exceeded. Limit was 30 seconds");
  EXPECT_THAT(OutputTooLargeMessage(1ull << 30, 3ull << 30),
              ::testing::StartsWith("Job output larger than "));
}

}  // namespace
}  // namespace cw
