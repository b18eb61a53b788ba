#include "job/program_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>

#include <gtest/gtest.h>

#include "common/test_yaml.h"

namespace cw {
namespace {

ProgramOutcome Outcome(int code, double seconds) {
  ProgramOutcome o;
  o.exit_code = code;
  o.elapsed_seconds = seconds;
  return o;
}
namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing::BillionLaughs;

// Runs `f` on another thread; fails the test instead of hanging it when it has
// not returned within two seconds (a reader stuck on the FIFO `fifo` is then
// released by opening the FIFO for writing).
template <typename F>
auto Bounded(const fs::path& fifo, F f) {
  auto future = std::async(std::launch::async, f);
  if (future.wait_for(2s) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on " << fifo;
    int unblock = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    if (unblock >= 0) ::close(unblock);
  }
  return future.get();
}

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
  ASSERT_TRUE(WriteOutputMetadata(dir_, Outcome(0, 1.5), ProgramOutcome{}).ok());
  std::ifstream in(dir_ / "metadata");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("exitCode: 0"), std::string::npos);
  EXPECT_NE(text.find("elapsedTime: 1.5"), std::string::npos);
  EXPECT_NE(text.find("ingestionExitCode: ~"), std::string::npos);
  auto again = WriteOutputMetadata(dir_, Outcome(0, 1.0), Outcome(0, 1.0));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("reserved"), std::string::npos);
}

TEST_F(ProgramFilesTest, OutputMetadataHasGpuKeysOnlyWithGpuFigures) {
  const std::pair<double, const char*> means[] = {
      {87.34, "87.3"}, {100, "100"}, {0.04, "0"}, {9.96, "10"}, {33.333333, "33.3"}};
  for (const auto& [mean, written] : means) {
    fs::remove(dir_ / "metadata");
    GpuUsage gpu;
    gpu.peak_memory_bytes = 85520809984ull;
    gpu.mean_utilization_percent = mean;
    ASSERT_TRUE(WriteOutputMetadata(dir_, Outcome(0, 1.5), ProgramOutcome{}, gpu).ok());
    std::ifstream in(dir_ / "metadata");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find("gpuPeakMemoryBytes: 85520809984\n"), std::string::npos) << text;
    EXPECT_NE(text.find("gpuMeanUtilization: " + std::string(written) + "\n"), std::string::npos)
        << text;
    YAML::Node node = YAML::Load(text);
    EXPECT_EQ(node["gpuMeanUtilization"].as<std::string>(), written);
    EXPECT_NEAR(node["gpuMeanUtilization"].as<double>(), mean, 0.05);
    EXPECT_EQ(node["exitCode"].as<int>(), 0);
  }
  fs::remove(dir_ / "metadata");
  ASSERT_TRUE(WriteOutputMetadata(dir_, Outcome(0, 1.5), ProgramOutcome{}, GpuUsage{}).ok());
  std::ifstream in(dir_ / "metadata");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text.find("gpu"), std::string::npos) << text;
}

TEST_F(ProgramFilesTest, ScoresLinkIsRefusedAndNotFollowed) {
  Write("elsewhere/secret", "a: 0.5  # MARKER-31c7\n");
  for (const char* name : {"scores.txt", "scores.json"}) {
    fs::remove(dir_ / "out" / "scores.txt");
    fs::create_directories(dir_ / "out");
    fs::create_symlink(dir_ / "elsewhere/secret", dir_ / "out" / name);
    auto s = ReadScores(dir_ / "out");
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_EQ(s.status().code(), Code::kInvalidInput);
    EXPECT_NE(s.status().message().find(std::string(name) + " is a symbolic link"),
              std::string::npos)
        << s.status().message();
    EXPECT_EQ(s.status().message().find("MARKER"), std::string::npos) << s.status().message();
    EXPECT_EQ(s.status().message().find(dir_.string()), std::string::npos);
  }
}

TEST_F(ProgramFilesTest, ScoresJsonNotRegularDoesNotFallBackToTxt) {
  Write("scores.txt", "a: 1\n");
  fs::create_symlink("/etc/passwd", dir_ / "scores.json");
  auto s = ReadScores(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("scores.json is a symbolic link"), std::string::npos)
      << s.status().message();
}

TEST_F(ProgramFilesTest, ScoresFifoFailsPromptly) {
  for (const char* name : {"scores.json", "scores.txt"}) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_EQ(::mkfifo((dir_ / name).c_str(), 0600), 0);
    auto s = Bounded(dir_ / name, [&] { return ReadScores(dir_); });
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_EQ(s.status().code(), Code::kInvalidInput);
    EXPECT_NE(s.status().message().find(std::string(name) + " is not a regular file (a FIFO)"),
              std::string::npos)
        << s.status().message();
  }
}

TEST_F(ProgramFilesTest, ScoresTooBigIsRefused) {
  Write("scores.txt", "a: 1\n" + std::string(1 << 20, '#'));
  auto s = ReadScores(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidInput);
  EXPECT_NE(s.status().message().find("scores.txt is more than the 1 MB allowed"),
            std::string::npos)
      << s.status().message();
}

TEST_F(ProgramFilesTest, BillionLaughsIsRefusedQuickly) {
  Write("scores.txt", BillionLaughs());
  auto start = std::chrono::steady_clock::now();
  auto s = ReadScores(dir_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidInput);
  EXPECT_EQ(s.status().message(),
            "scores.txt expands to more than 100000 values (YAML anchors/aliases?)");
}

TEST_F(ProgramFilesTest, AliasesToBigTextAreRefused) {
  // Few values, but each alias repeats 200 KB of text: 6 MB once expanded.
  std::string yaml = "a: &a \"" + std::string(200 * 1024, 'x') + "\"\nb: [";
  for (int i = 0; i < 30; ++i) yaml += i ? ", *a" : "*a";
  Write("scores.txt", yaml + "]\n");
  auto s = ReadScores(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "scores.txt expands to more than 4 MB of text (YAML anchors/aliases?)");
}

TEST_F(ProgramFilesTest, SelfReferencingAliasIsRefused) {
  for (const char* yaml : {"a: &a [1, *a]\n", "&a {x: *a}\n", "a: &a\n  b: 1\n  c: *a\n",
                           "a: &a {? *a : 1}\n"}) {
    Write("scores.txt", yaml);
    auto s = ReadScores(dir_);
    ASSERT_FALSE(s.ok()) << yaml;
    EXPECT_EQ(s.status().code(), Code::kInvalidInput);
    EXPECT_NE(s.status().message().find("scores.txt refers to itself"), std::string::npos)
        << s.status().message();
  }
}

TEST_F(ProgramFilesTest, ScoreNamesThatAreNotUtf8AreDropped) {
  // yaml-cpp passes the byte through; JSON could not carry it on.
  Write("scores.txt", "bad\xff: 1\ngood: 2\n");
  auto s = ReadScores(dir_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->size(), 1u);
  EXPECT_DOUBLE_EQ((*s)["good"].get<double>(), 2);
  EXPECT_NO_THROW((void)s->dump());
}

TEST_F(ProgramFilesTest, SmallAliasesStillWork) {
  Write("scores.txt", "base: &b 0.5\nacc: *b\nall: &all {x: 1}\ncopy: *all\n");
  auto s = ReadScores(dir_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_DOUBLE_EQ((*s)["acc"].get<double>(), 0.5);
}

TEST_F(ProgramFilesTest, DeepNestingIsRefused) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  Write("scores.json", deep);
  auto json = ReadScores(dir_);
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().code(), Code::kInvalidInput);
  EXPECT_NE(json.status().message().find("nests JSON more than 64 levels"), std::string::npos)
      << json.status().message();

  fs::remove(dir_ / "scores.json");
  Write("scores.txt", "a: " + deep + "\n");
  auto yaml = ReadScores(dir_);
  ASSERT_FALSE(yaml.ok());
  EXPECT_EQ(yaml.status().code(), Code::kInvalidInput);

  // 65 levels: yaml-cpp loads it, the budget refuses it.
  Write("scores.txt", "a: " + std::string(65, '[') + std::string(65, ']') + "\n");
  auto budget = ReadScores(dir_);
  ASSERT_FALSE(budget.ok());
  EXPECT_EQ(budget.status().message(), "scores.txt is nested more than 64 levels deep");
}

TEST_F(ProgramFilesTest, UnparsedContentStaysOutOfMessages) {
  Write("scores.json", "{\"a\": 1,\n \"b\": MARKER-5d2e}");
  auto json = ReadScores(dir_);
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().message().find("MARKER"), std::string::npos) << json.status().message();
  EXPECT_NE(json.status().message().find("line 2, column"), std::string::npos)
      << json.status().message();
}

TEST_F(ProgramFilesTest, YamlToJsonBudgetIsExact) {
  // A mapping, its key and its value: three values.
  YAML::Node one = YAML::Load("{a: 1}");
  auto ok = YamlToJsonBudgeted(one, "x", {.max_nodes = 3});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->dump(), R"({"a":1.0})");
  auto over = YamlToJsonBudgeted(one, "x", {.max_nodes = 2});
  EXPECT_EQ(over.status().message(), "x expands to more than 2 values (YAML anchors/aliases?)");
  // A list or mapping as a key cannot become a JSON key.
  auto key = YamlToJsonBudgeted(YAML::Load("? [a]\n: 1\n"), "x");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), Code::kInvalidInput);
}

TEST_F(ProgramFilesTest, MetadataThatIsNotARegularFileIsRefused) {
  Write("elsewhere/secret", "command: MARKER-9b1f\n");
  fs::create_symlink(dir_ / "elsewhere/secret", dir_ / "metadata.yaml");
  auto link = ReadProgramMetadata(dir_);
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.status().code(), Code::kInvalidInput);
  EXPECT_EQ(link.status().message().find("MARKER"), std::string::npos);
  EXPECT_NE(link.status().message().find("metadata.yaml is a symbolic link"), std::string::npos)
      << link.status().message();

  fs::remove(dir_ / "metadata.yaml");
  ASSERT_EQ(::mkfifo((dir_ / "metadata").c_str(), 0600), 0);
  auto fifo = Bounded(dir_ / "metadata", [&] { return ReadProgramMetadata(dir_); });
  ASSERT_FALSE(fifo.ok());
  EXPECT_EQ(fifo.status().message(), "metadata is not a regular file (a FIFO)");

  // A folder by either name is not a metadata file at all.
  fs::remove(dir_ / "metadata");
  fs::create_directory(dir_ / "metadata");
  auto folder = ReadProgramMetadata(dir_);
  ASSERT_TRUE(folder.ok());
  EXPECT_FALSE(folder->has_metadata);
}

TEST_F(ProgramFilesTest, MetadataBillionLaughsAndTooBig) {
  Write("metadata.yaml", BillionLaughs() + "command: python run.py\n");
  auto start = std::chrono::steady_clock::now();
  auto laughs = ReadProgramMetadata(dir_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_TRUE(laughs.ok()) << laughs.status().ToString();  // only `command` is read
  EXPECT_EQ(*laughs->command, "python run.py");

  Write("metadata.yaml", "command: x\n" + std::string((1 << 20) + 10, '#'));
  auto big = ReadProgramMetadata(dir_);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("more than the 1 MB allowed"), std::string::npos)
      << big.status().message();
}

TEST_F(ProgramFilesTest, OutputMetadataIsNotWrittenThroughALink) {
  Write("elsewhere/target", "untouched\n");
  fs::create_symlink(dir_ / "elsewhere/target", dir_ / "metadata");
  auto s = WriteOutputMetadata(dir_, Outcome(0, 1.5), Outcome(0, 1.0));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("reserved"), std::string::npos);
  std::ifstream in(dir_ / "elsewhere/target");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "untouched\n");

  // A dangling link must not create its target either.
  fs::remove(dir_ / "metadata");
  fs::create_symlink(dir_ / "elsewhere/created", dir_ / "metadata");
  EXPECT_FALSE(WriteOutputMetadata(dir_, Outcome(0, 1.5), Outcome(0, 1.0)).ok());
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere/created"));
}

}  // namespace
}  // namespace cw
