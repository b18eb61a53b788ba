#include "bundle/competition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>

#include "archive/zip.h"
#include "common/test_yaml.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = BundleEntry::Kind;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "bundle_test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A bundle's program or data folder: one file is enough to make it a folder.
void Folder(const fs::path& path) { Write(path / "README", "x\n"); }

PhaseSpec Phase(int index, const std::string& name) {
  PhaseSpec phase;
  phase.index = index;
  phase.name = name;
  return phase;
}

TaskSpec Task(int index, const std::string& name) {
  TaskSpec task;
  task.index = index;
  task.name = name;
  return task;
}

const char kUuid[] = "0b0a6f9e-6c3a-4c43-9c1e-7a9f8f1b2c3d";

class CompetitionTest : public ::testing::Test {
 protected:
  // Loads the folder bundle at tmp/bundle (work dir unused).
  Result<Competition> LoadFolder() { return LoadCompetition(bundle(), tmp_.path() / "work"); }
  fs::path bundle() const { return tmp_.path() / "bundle"; }
  TempDir tmp_;
};

const char kV2Yaml[] = R"(
version: 2
title: Two tasks
docker_image: example/image:1
tasks:
  - index: 0
    name: First
    scoring_program: scoring_program/
    ingestion_program: ingestion_program
    input_data: input_data.zip
    reference_data: 0b0a6f9e-6c3a-4c43-9c1e-7a9f8f1b2c3d
  - index: 5
    name: Second
    scoring_program: scoring_program/
    input_data: 12345
phases:
  - index: 0
    name: Development
    execution_time_limit: 300
    tasks: [0, 5]
  - index: 1
    name: Final Phase
    tasks:
      - 5
)";

TEST_F(CompetitionTest, ReadsVersion2Folder) {
  Write(bundle() / "competition.yaml", kV2Yaml);
  Folder(bundle() / "scoring_program");
  Folder(bundle() / "ingestion_program");
  Write(bundle() / "input_data.zip", "PK");

  Result<Competition> c = LoadFolder();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 2);
  EXPECT_EQ(c->title, "Two tasks");
  EXPECT_EQ(c->docker_image, "example/image:1");
  EXPECT_EQ(c->root, fs::canonical(bundle()));
  ASSERT_EQ(c->phases.size(), 2u);

  const PhaseSpec& dev = c->phases[0];
  EXPECT_EQ(dev.index, 0);
  EXPECT_EQ(dev.name, "Development");
  EXPECT_EQ(dev.execution_time_limit, 300);
  ASSERT_EQ(dev.tasks.size(), 2u);
  const TaskSpec& first = dev.tasks[0];
  EXPECT_EQ(first.name, "First");
  EXPECT_EQ(first.scoring_program.kind, Kind::kFolder);
  EXPECT_EQ(first.scoring_program.path, c->root / "scoring_program");
  EXPECT_EQ(first.scoring_program.key, "scoring_program/");
  EXPECT_EQ(first.ingestion_program.kind, Kind::kFolder);
  EXPECT_EQ(first.input_data.kind, Kind::kZip);
  EXPECT_EQ(first.input_data.path, c->root / "input_data.zip");
  EXPECT_TRUE(first.input_data.path.is_absolute());
  EXPECT_EQ(first.reference_data.kind, Kind::kServerKey);
  EXPECT_EQ(first.reference_data.key, kUuid);

  const TaskSpec& second = dev.tasks[1];
  EXPECT_EQ(second.index, 5);
  EXPECT_EQ(second.ingestion_program.kind, Kind::kNone);
  EXPECT_EQ(second.reference_data.kind, Kind::kNone);
  // An int in YAML is a key like any other.
  EXPECT_EQ(second.input_data.kind, Kind::kServerKey);
  EXPECT_EQ(second.input_data.key, "12345");

  EXPECT_EQ(c->phases[1].execution_time_limit, 600);
  ASSERT_EQ(c->phases[1].tasks.size(), 1u);
  EXPECT_EQ(c->phases[1].tasks[0].name, "Second");
}

TEST_F(CompetitionTest, Version2DefaultsAndTasksListWithoutVersion) {
  Write(bundle() / "competition.yml", R"(
tasks:
  - scoring_program: scoring_program
phases:
  - tasks: [0]
)");
  Folder(bundle() / "scoring_program");
  Result<Competition> c = LoadFolder();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 2);
  EXPECT_EQ(c->docker_image, "codalab/codalab-legacy:py37");
  ASSERT_EQ(c->phases.size(), 1u);
  EXPECT_EQ(c->phases[0].name, "phase 0");
  EXPECT_EQ(c->phases[0].tasks[0].name, "task 0");
  EXPECT_EQ(c->phases[0].tasks[0].scoring_program.kind, Kind::kFolder);
}

TEST_F(CompetitionTest, ServerTaskKeyMakesEveryEntryAServerKey) {
  Write(bundle() / "competition.yaml", std::string(R"(
version: 2
tasks:
  - index: 0
    key: )") + kUuid + R"(
    name: Existing task
phases:
  - name: P
    tasks: [0]
)");
  Result<Competition> c = LoadFolder();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const TaskSpec& task = c->phases[0].tasks[0];
  for (const BundleEntry* e :
       {&task.scoring_program, &task.ingestion_program, &task.input_data, &task.reference_data}) {
    EXPECT_EQ(e->kind, Kind::kServerKey);
    EXPECT_EQ(e->key, kUuid);
  }
  Status s = RequireLocal(task.scoring_program, "scoring_program");
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_EQ(s.message(),
            std::string("scoring_program of task 'Existing task' is '") + kUuid +
                "', a dataset key that only a Codabench server can resolve; put the folder or zip "
                "in the bundle to run it locally");
}

TEST_F(CompetitionTest, RequireLocal) {
  EXPECT_TRUE(RequireLocal(BundleEntry{}, "input_data").ok());
  EXPECT_TRUE(RequireLocal(BundleEntry{Kind::kFolder, "/b/x", "x", "T"}, "input_data").ok());
  EXPECT_TRUE(RequireLocal(BundleEntry{Kind::kZip, "/b/x.zip", "x.zip", "T"}, "input_data").ok());
  // A missing file name reads as a forgotten file more than as a server key.
  Status s =
      RequireLocal(BundleEntry{Kind::kServerKey, "", "reference.zip", "T"}, "reference_data");
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_THAT(s.message(),
              HasSubstr("reference_data of task 'T' is 'reference.zip', which is neither"));
  EXPECT_THAT(s.message(), HasSubstr("put the folder or zip in the bundle to run it locally"));
}

const char kV15Yaml[] = R"(
title: Old style
competition_docker_image: codalab/codalab-legacy:gpu
phases:
  2:
    phasenumber: 2
    label: Final
    scoring_program: scoring_program.zip
    reference_data: reference_data.zip
  1:
    phasenumber: 1
    label: "Development"
    execution_time_limit: 500
    scoring_program: scoring_program.zip
    ingestion_program: ingestion/
    input_data: 7d1e3a52-0000-4000-8000-000000000001
    reference_data: reference_data.zip
leaderboard:
  leaderboards:
    RESULTS: &RESULTS
      label: Results
      rank: 1
  columns:
    zeta:
      leaderboard: *RESULTS
      label: Zeta
    set2_score:
      leaderboard: *RESULTS
      label: Error
      rank: 2
      numeric_format: 4
      sort: asc
    set1_score:
      leaderboard: *RESULTS
      label: Accuracy
      rank: 1
    alpha:
      leaderboard: *RESULTS
)";

TEST_F(CompetitionTest, ReadsVersion15WithAnchors) {
  Write(bundle() / "competition.yaml", kV15Yaml);
  Write(bundle() / "scoring_program.zip", "PK");
  Write(bundle() / "reference_data.zip", "PK");
  Folder(bundle() / "ingestion");

  Result<Competition> c = LoadFolder();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 1);
  EXPECT_EQ(c->title, "Old style");
  EXPECT_EQ(c->docker_image, "codalab/codalab-legacy:gpu");
  ASSERT_EQ(c->phases.size(), 2u);
  EXPECT_EQ(c->phases[0].index, 1);
  EXPECT_EQ(c->phases[0].name, "Development");
  EXPECT_EQ(c->phases[0].execution_time_limit, 500);
  EXPECT_EQ(c->phases[1].index, 2);
  EXPECT_EQ(c->phases[1].name, "Final");
  EXPECT_EQ(c->phases[1].execution_time_limit, 600);

  ASSERT_EQ(c->phases[0].tasks.size(), 1u);
  const TaskSpec& task = c->phases[0].tasks[0];
  EXPECT_EQ(task.index, 0);
  EXPECT_EQ(task.name, "Development");
  EXPECT_EQ(task.scoring_program.kind, Kind::kZip);
  EXPECT_EQ(task.scoring_program.path, c->root / "scoring_program.zip");
  EXPECT_EQ(task.ingestion_program.kind, Kind::kFolder);
  EXPECT_EQ(task.input_data.kind, Kind::kServerKey);
  EXPECT_EQ(task.reference_data.kind, Kind::kZip);
  Status s = RequireLocal(task.input_data, "input_data");
  EXPECT_THAT(s.message(), HasSubstr("input_data of task 'Development' is '7d1e3a52-"));

  // By rank, unranked last by key; the anchors resolve without complaint.
  std::vector<std::string> keys, titles, sortings;
  for (const LeaderboardColumn& col : c->columns) {
    keys.push_back(col.key);
    titles.push_back(col.title);
    sortings.push_back(col.sorting);
  }
  EXPECT_THAT(keys, ElementsAre("set1_score", "set2_score", "alpha", "zeta"));
  EXPECT_THAT(titles, ElementsAre("Accuracy", "Error", "alpha", "Zeta"));
  EXPECT_THAT(sortings, ElementsAre("desc", "asc", "desc", "desc"));
  EXPECT_EQ(c->columns[0].index, 0);
  EXPECT_EQ(c->columns[3].index, 3);
  EXPECT_EQ(c->columns[0].numeric_format, -1);
  EXPECT_EQ(c->columns[1].numeric_format, 4);
}

TEST_F(CompetitionTest, ColumnsOrderedByLeaderboardThenColumnIndex) {
  Write(bundle() / "competition.yaml", R"(
version: 2
leaderboards:
  - index: 1
    columns:
      - {key: b2, index: 1, title: B two}
      - {key: b1, index: 0, sorting: ASC}
  - index: 0
    columns:
      - {key: a1, index: 0, precision: 3}
)");
  Result<Competition> c = LoadFolder();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->columns.size(), 3u);
  EXPECT_EQ(c->columns[0].key, "a1");
  EXPECT_EQ(c->columns[0].numeric_format, 3);
  EXPECT_EQ(c->columns[1].key, "b1");
  EXPECT_EQ(c->columns[1].title, "b1");
  EXPECT_EQ(c->columns[1].sorting, "asc");
  EXPECT_EQ(c->columns[2].key, "b2");
  EXPECT_EQ(c->columns[2].title, "B two");
  EXPECT_EQ(c->columns[2].sorting, "desc");
  EXPECT_EQ(c->columns[2].index, 1);
}

TEST_F(CompetitionTest, BadSortingIsRefused) {
  Write(bundle() / "competition.yaml",
        "version: 2\nleaderboards:\n  - columns:\n      - {key: a, sorting: up}\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("sorting must be 'asc' or 'desc', not 'up'"));
}

TEST_F(CompetitionTest, SelectPhase) {
  Competition c;
  c.phases = {Phase(1, "Development"), Phase(2, "Final Phase"), Phase(7, "Extra")};
  auto name_of = [&](const std::string& selector) {
    Result<const PhaseSpec*> p = SelectPhase(c, selector);
    return p.ok() ? (*p)->name : p.status().ToString();
  };
  EXPECT_EQ(name_of(""), "Development");
  EXPECT_EQ(name_of("2"), "Final Phase");  // by index
  EXPECT_EQ(name_of("7"), "Extra");        // by index
  EXPECT_EQ(name_of("3"), "Extra");        // no phase has index 3: the third phase
  EXPECT_EQ(name_of("final phase"), "Final Phase");
  EXPECT_EQ(name_of("DEVELOPMENT"), "Development");

  Result<const PhaseSpec*> missing = SelectPhase(c, "Test");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidInput);
  EXPECT_EQ(missing.status().message(),
            "no phase 'Test' in this competition; its phases are 1 'Development', 2 'Final Phase', "
            "7 'Extra'");
  EXPECT_FALSE(SelectPhase(c, "9").ok());
  EXPECT_FALSE(SelectPhase(Competition{}, "").ok());
}

TEST_F(CompetitionTest, SelectTask) {
  PhaseSpec phase = Phase(0, "P");
  phase.tasks = {Task(4, "four"), Task(9, "nine")};
  auto name_of = [&](int task) {
    Result<const TaskSpec*> t = SelectTask(phase, task);
    return t.ok() ? (*t)->name : t.status().ToString();
  };
  EXPECT_EQ(name_of(-1), "four");
  EXPECT_EQ(name_of(9), "nine");
  EXPECT_EQ(name_of(2), "nine");  // position
  EXPECT_EQ(name_of(3), "InvalidInput: phase 'P' has no task 3; its tasks are 4 'four', 9 'nine'");
  EXPECT_FALSE(SelectTask(Phase(0, "Empty"), -1).ok());
}

TEST_F(CompetitionTest, MissingCompetitionYaml) {
  Folder(bundle() / "scoring_program");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_EQ(c.status().message(),
            bundle().string() +
                ": no competition.yaml at its root; is this a Codabench competition bundle?");
}

TEST_F(CompetitionTest, TwoTopFoldersAreNotSearched) {
  Write(bundle() / "a" / "competition.yaml", "version: 2\n");
  Folder(bundle() / "b");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("no competition.yaml at its root"));
}

TEST_F(CompetitionTest, MissingBundleIsNotFound) {
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kNotFound);
}

TEST_F(CompetitionTest, BadYamlGivesLineAndColumn) {
  Write(bundle() / "competition.yaml", "version: 2\ntitle: ok\nphases: [a, b\n  c: d\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_THAT(c.status().message(),
              HasSubstr(bundle().string() + ": competition.yaml, line 4, column "));
  EXPECT_THAT(c.status().message(), HasSubstr("not valid YAML"));
}

TEST_F(CompetitionTest, WrongTypeNamesTheLine) {
  Write(bundle() / "competition.yaml",
        "version: 2\ntasks: []\nphases:\n  - name: P\n    execution_time_limit: soon\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            bundle().string() +
                ": competition.yaml, line 5: execution_time_limit must be a whole "
                "number, not 'soon'");
}

TEST_F(CompetitionTest, PhaseNamingAMissingTask) {
  Write(bundle() / "competition.yaml",
        "version: 2\ntasks:\n  - index: 0\nphases:\n  - name: P\n    tasks: [0, 3]\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr("line 6: phase 'P' lists task 3, but no task has that index"));
}

TEST_F(CompetitionTest, EntryEscapingTheBundleIsRefused) {
  for (const char* value : {"../outside", "/etc", "a/../../b"}) {
    Write(bundle() / "competition.yaml",
          std::string("version: 2\ntasks:\n  - name: T\n    input_data: ") + value + "\n");
    Result<Competition> c = LoadFolder();
    ASSERT_FALSE(c.ok()) << value;
    EXPECT_EQ(c.status().code(), Code::kInvalidInput);
    EXPECT_THAT(c.status().message(), HasSubstr(std::string("input_data of task 'T' is '") + value +
                                                "', which points outside the bundle"));
  }
}

TEST_F(CompetitionTest, EntryThatIsAPlainFileIsRefused) {
  Write(bundle() / "competition.yaml",
        "version: 2\ntasks:\n  - name: T\n    scoring_program: score.py\n");
  Write(bundle() / "score.py", "print(1)\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("it must be a folder or a .zip file"));
}

TEST_F(CompetitionTest, NotAZipFile) {
  Write(tmp_.path() / "bundle.tar.gz", "not a zip at all");
  Result<Competition> c = LoadCompetition(tmp_.path() / "bundle.tar.gz", tmp_.path() / "work");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_THAT(c.status().message(), HasSubstr("bundle.tar.gz: neither a zip file nor a folder"));
}

TEST_F(CompetitionTest, ZipWithOneTopFolderAndMacLitter) {
  fs::path stage = tmp_.path() / "stage";
  Write(stage / "my competition" / "competition.yaml", kV2Yaml);
  Folder(stage / "my competition" / "scoring_program");
  Folder(stage / "my competition" / "ingestion_program");
  Write(stage / "__MACOSX" / "my competition" / "._competition.yaml", "litter");
  fs::path zip = tmp_.path() / "bundle.zip";
  ASSERT_TRUE(CreateZip(stage, zip).ok());

  fs::path work = tmp_.path() / "work";
  Result<Competition> c = LoadCompetition(zip, work);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->root, fs::canonical(work / "my competition"));
  const TaskSpec& first = c->phases[0].tasks[0];
  EXPECT_EQ(first.scoring_program.kind, Kind::kFolder);
  EXPECT_EQ(first.scoring_program.path, c->root / "scoring_program");
  EXPECT_TRUE(fs::is_directory(first.scoring_program.path));
  EXPECT_EQ(first.input_data.kind, Kind::kServerKey);  // input_data.zip is not in this bundle
}

TEST_F(CompetitionTest, ZipWithYamlAtItsRoot) {
  fs::path stage = tmp_.path() / "stage";
  Write(stage / "competition.yaml", kV15Yaml);
  Write(stage / "scoring_program.zip", "PK");
  fs::path zip = tmp_.path() / "bundle.zip";
  ASSERT_TRUE(CreateZip(stage, zip).ok());
  Result<Competition> c = LoadCompetition(zip, tmp_.path() / "work");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->root, fs::canonical(tmp_.path() / "work"));
  EXPECT_EQ(c->phases[0].tasks[0].scoring_program.kind, Kind::kZip);
  EXPECT_EQ(c->phases[0].tasks[0].reference_data.kind, Kind::kServerKey);
}

// The checked-in fixture, zipped the way make_v15_bundle.sh does it.
TEST_F(CompetitionTest, V15Fixture) {
  const fs::path fixture = fs::path(CW_SOURCE_DIR) / "tests" / "fixtures" / "v15_bundle";
  fs::path stage = tmp_.path() / "stage";
  fs::create_directories(stage);
  fs::copy_file(fixture / "competition.yaml", stage / "competition.yaml");
  ASSERT_TRUE(CreateZip(fixture / "src" / "scoring_program", stage / "scoring_program.zip").ok());
  ASSERT_TRUE(CreateZip(fixture / "src" / "reference_data", stage / "reference_data.zip").ok());
  ASSERT_TRUE(CreateZip(stage, tmp_.path() / "bundle.zip").ok());

  Result<Competition> c = LoadCompetition(tmp_.path() / "bundle.zip", tmp_.path() / "work");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 1);
  EXPECT_EQ(c->docker_image, "codalab/codalab-legacy:py37");
  Result<const PhaseSpec*> phase = SelectPhase(*c, "1");
  ASSERT_TRUE(phase.ok()) << phase.status().ToString();
  EXPECT_EQ((*phase)->name, "Development");
  EXPECT_EQ((*phase)->execution_time_limit, 120);
  Result<const TaskSpec*> task = SelectTask(**phase, -1);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ((*task)->scoring_program.kind, Kind::kZip);
  EXPECT_EQ((*task)->reference_data.kind, Kind::kZip);
  EXPECT_EQ((*task)->ingestion_program.kind, Kind::kNone);
  EXPECT_EQ((*task)->input_data.kind, Kind::kNone);
  ASSERT_EQ(c->columns.size(), 2u);
  EXPECT_EQ(c->columns[0].key, "accuracy");
  EXPECT_EQ(c->columns[0].title, "Accuracy");
  EXPECT_EQ(c->columns[0].numeric_format, 3);
  EXPECT_EQ(c->columns[1].key, "error_rate");
  EXPECT_EQ(c->columns[1].sorting, "asc");
}

TEST_F(CompetitionTest, ExampleCompetition) {
  Result<Competition> c =
      LoadCompetition(fs::path(CW_SOURCE_DIR) / "examples" / "competition", tmp_.path() / "work");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 2);
  EXPECT_EQ(c->docker_image, "python:3.11-slim-bookworm");
  Result<const PhaseSpec*> phase = SelectPhase(*c, "development");
  ASSERT_TRUE(phase.ok()) << phase.status().ToString();
  EXPECT_EQ((*phase)->execution_time_limit, 300);
  ASSERT_EQ((*phase)->tasks.size(), 1u);
  const TaskSpec& task = (*phase)->tasks[0];
  for (const BundleEntry* e :
       {&task.scoring_program, &task.ingestion_program, &task.input_data, &task.reference_data}) {
    EXPECT_EQ(e->kind, Kind::kFolder) << e->key;
    EXPECT_TRUE(fs::is_directory(e->path)) << e->path;
  }
  ASSERT_EQ(c->columns.size(), 2u);
  EXPECT_EQ(c->columns[0].key, "accuracy");
  EXPECT_EQ(c->columns[0].sorting, "desc");
  EXPECT_EQ(c->columns[1].key, "mae");
  EXPECT_EQ(c->columns[1].sorting, "asc");
}

using testing::BillionLaughs;

TEST_F(CompetitionTest, BillionLaughsIsRefusedQuickly) {
  // Anchored at the top, used where the 1.5 reader looks: refused before it looks.
  Write(bundle() / "competition.yaml",
        "title: Laughs\n" + BillionLaughs() +
            "leaderboard:\n  columns:\n    score: {label: *i}\nphases:\n  1: {label: *i}\n");
  auto start = std::chrono::steady_clock::now();
  Result<Competition> c = LoadFolder();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_THAT(c.status().message(),
              HasSubstr("competition.yaml expands to more than 100000 values"));
}

TEST_F(CompetitionTest, SelfReferencingAliasIsRefused) {
  Write(bundle() / "competition.yaml",
        "title: Loop\nleaderboard: &l\n  columns:\n    score: *l\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_THAT(c.status().message(), HasSubstr("competition.yaml refers to itself"));
}

TEST_F(CompetitionTest, LinkedCompetitionYamlIsRefused) {
  Write(tmp_.path() / "secret", "title: MARKER-0c4d\n");
  fs::create_directories(bundle());
  fs::create_symlink(tmp_.path() / "secret", bundle() / "competition.yaml");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_THAT(c.status().message(), HasSubstr("competition.yaml is a symbolic link"));
  EXPECT_THAT(c.status().message(), ::testing::Not(HasSubstr("MARKER")));
}

TEST_F(CompetitionTest, FifoCompetitionYamlFailsPromptly) {
  fs::create_directories(bundle());
  fs::path fifo = bundle() / "competition.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto future = std::async(std::launch::async, [&] { return LoadFolder(); });
  if (future.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on the FIFO";
    int unblock = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    if (unblock >= 0) ::close(unblock);
  }
  Result<Competition> c = future.get();
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("competition.yaml is not a regular file (a FIFO)"));
}

TEST_F(CompetitionTest, TooBigCompetitionYamlIsRefused) {
  Write(bundle() / "competition.yaml",
        "title: Big\n" + std::string(5 * 1024 * 1024, '#') + "\n");
  Result<Competition> c = LoadFolder();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidInput);
  EXPECT_THAT(c.status().message(),
              HasSubstr("competition.yaml is 5 MB, more than the 4 MB allowed"));
}

}  // namespace
}  // namespace cw
