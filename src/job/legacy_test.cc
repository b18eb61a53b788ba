#include "job/legacy.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(Legacy, ScoringProgramCommand) {
  EXPECT_EQ(ReplaceLegacyVariables("python $program/evaluate.py $input $output",
                                   ProgramKind::kProgram, true, false),
            "python /app/program/evaluate.py /app/input /app/output");
}

TEST(Legacy, IngestionSeesInputDataAndIngestedProgram) {
  EXPECT_EQ(ReplaceLegacyVariables(
                "python $ingestion_program/ingestion.py $input $output $submission_program $shared",
                ProgramKind::kIngestion, false, false),
            "python /app/program/ingestion.py /app/input_data /app/output "
            "/app/ingested_program /app/shared");
}

TEST(Legacy, EveryVariableOfTheTable) {
  const std::string all = "$input $output $program $ingestion_program $hidden $shared "
                          "$submission_program $tmp $predictions";
  EXPECT_EQ(ReplaceLegacyVariables(all, ProgramKind::kProgram, false, false),
            "/app/input /app/output /app/program /app/program /app/input/ref /app/shared "
            "/app/ingested_program /app/output /app/output");
  EXPECT_EQ(ReplaceLegacyVariables(all, ProgramKind::kProgram, true, true),
            "/app/input /app/output /app/ingestion_program /app/program /app/input/ref "
            "/app/shared /app/ingested_program /app/output /app/input/res");
  EXPECT_EQ(ReplaceLegacyVariables(all, ProgramKind::kIngestion, true, false),
            "/app/input_data /app/output /app/program /app/program /app/input/ref /app/shared "
            "/app/ingested_program /app/output /app/input/res");
}

TEST(Legacy, PlainSubstringReplacementLikeTheReferenceWorker) {
  // "$inputs" is not a variable, but the reference worker replaces its prefix.
  EXPECT_EQ(ReplaceLegacyVariables("ls $inputs", ProgramKind::kProgram, false, false),
            "ls /app/inputs");
  EXPECT_EQ(ReplaceLegacyVariables("echo no vars", ProgramKind::kProgram, false, false),
            "echo no vars");
}

}  // namespace
}  // namespace cw
