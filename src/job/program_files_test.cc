#include "job/program_files.h"

#include <fstream>

#include <gtest/gtest.h>

namespace cw {
namespace {
namespace fs = std::filesystem;

class ProgramFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cw-pf-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const fs::path& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  fs::path dir_;
};

TEST_F(ProgramFilesTest, MetadataYamlWinsOverMetadata) {
  Write("metadata", "command: python old.py\n");
  Write("metadata.yaml", "command: python new.py\n");
  auto m = ReadProgramMetadata(dir_);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->has_metadata);
  EXPECT_EQ(m->file.filename(), "metadata.yaml");
  EXPECT_EQ(*m->command, "python new.py");
}

TEST_F(ProgramFilesTest, NoMetadataAndNoCommand) {
  auto none = ReadProgramMetadata(dir_);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_metadata);
  Write("metadata", "description: consumed by ingestion\n");
  auto no_cmd = ReadProgramMetadata(dir_);
  ASSERT_TRUE(no_cmd.ok());
  EXPECT_TRUE(no_cmd->has_metadata);
  EXPECT_FALSE(no_cmd->command.has_value());
}

TEST_F(ProgramFilesTest, BrokenYamlNamesFileAndLine) {
  Write("metadata.yaml", "command: [unclosed\n");
  auto m = ReadProgramMetadata(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidInput);
  EXPECT_NE(m.status().message().find("metadata.yaml"), std::string::npos);
  EXPECT_NE(m.status().message().find("line"), std::string::npos);
}

TEST_F(ProgramFilesTest, HoistsTheOneTopFolderThatHoldsMetadata) {
  Write("my_submission/metadata.yaml", "command: python run.py\n");
  Write("my_submission/run.py", "print(1)\n");
  Write("__MACOSX/my_submission/._run.py", "junk");
  auto moved = HoistSingleTopFolder(dir_);
  ASSERT_TRUE(moved.ok());
  EXPECT_TRUE(*moved);
  EXPECT_TRUE(fs::exists(dir_ / "metadata.yaml"));
  EXPECT_TRUE(fs::exists(dir_ / "run.py"));
  EXPECT_FALSE(fs::exists(dir_ / "my_submission"));
}

TEST_F(ProgramFilesTest, LeavesFoldersWithoutMetadataAlone) {
  Write("res/answers.predict", "1\n");
  auto moved = HoistSingleTopFolder(dir_);
  ASSERT_TRUE(moved.ok());
  EXPECT_FALSE(*moved);
  EXPECT_TRUE(fs::exists(dir_ / "res/answers.predict"));
}

TEST_F(ProgramFilesTest, ScoresJson) {
  Write("scores.json", R"({"accuracy": 0.9, "mae": "1.5", "note": "hi", "n": 3})");
  auto s = ReadScores(dir_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_DOUBLE_EQ((*s)["accuracy"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ((*s)["mae"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ((*s)["n"].get<double>(), 3);
  EXPECT_FALSE(s->contains("note"));
}

TEST_F(ProgramFilesTest, ScoresTxtIsYaml) {
  Write("scores.txt", "set1_score: 0.75\nset2_score: 12\nDuration: 3.2\n");
  auto s = ReadScores(dir_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_DOUBLE_EQ((*s)["set1_score"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ((*s)["set2_score"].get<double>(), 12);
  EXPECT_DOUBLE_EQ((*s)["Duration"].get<double>(), 3.2);
}

TEST_F(ProgramFilesTest, JsonWinsOverTxt) {
  Write("scores.txt", "a: 1\n");
  Write("scores.json", R"({"a": 2})");
  auto s = ReadScores(dir_);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ((*s)["a"].get<double>(), 2);
}

TEST_F(ProgramFilesTest, ScoreFailuresAreClear) {
  auto none = ReadScores(dir_);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("neither scores.json nor scores.txt"), std::string::npos);
  Write("scores.json", "{not json");
  auto bad = ReadScores(dir_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("scores.json"), std::string::npos);
  Write("scores.json", "[1, 2]");
  EXPECT_FALSE(ReadScores(dir_).ok());
  Write("scores.json", R"({"a": "x"})");
  EXPECT_FALSE(ReadScores(dir_).ok());
}

TEST_F(ProgramFilesTest, OutputMetadataWrittenAndReservedNameRefused) {
  ASSERT_TRUE(WriteOutputMetadata(dir_, {0, 1.5}, {std::nullopt, std::nullopt}).ok());
  std::ifstream in(dir_ / "metadata");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("exitCode: 0"), std::string::npos);
  EXPECT_NE(text.find("elapsedTime: 1.5"), std::string::npos);
  EXPECT_NE(text.find("ingestionExitCode: ~"), std::string::npos);
  auto again = WriteOutputMetadata(dir_, {0, 1.0}, {0, 1.0});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("reserved"), std::string::npos);
}

// The submission did not run (results only, or code the ingestion imports):
// elapsedTime is the ingestion's, which old scoring programs report as Duration.
TEST_F(ProgramFilesTest, OutputMetadataElapsedTimeFallsBackToTheIngestions) {
  ASSERT_TRUE(WriteOutputMetadata(dir_, {std::nullopt, std::nullopt}, {1, 2.5}).ok());
  std::ifstream in(dir_ / "metadata");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("exitCode: ~"), std::string::npos);
  EXPECT_NE(text.find("elapsedTime: 2.5"), std::string::npos);
  EXPECT_NE(text.find("ingestionExitCode: 1"), std::string::npos);
  EXPECT_NE(text.find("ingestionElapsedTime: 2.5"), std::string::npos);
}

}  // namespace
}  // namespace cw
