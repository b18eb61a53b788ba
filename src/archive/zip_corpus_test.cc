// The layout reader against every file of testdata/zip_corpus (written by
// testdata/make_zip_corpus.py): valid zips, cut ones, bad offsets, overlong
// names, huge claimed sizes, ZIP64 fields, duplicate names, "../" names,
// links, overlapping entries and random byte flips. Built with the address
// sanitizer (scripts/test), a read out of bounds fails the test.
//
// For each file: our own central directory reader runs alone; then the layout
// reader (OpenCheckedZip + PlanUnpack) and ExtractZip, which must agree; the
// verdict in expected.tsv must hold; and whatever happens, nothing may appear
// outside the destination, a refusal leaves the destination empty, and what
// is unpacked is only files and folders without set-uid, set-gid or sticky bits.
// CW_ZIP_CORPUS_VERBOSE=1 prints each file's outcome.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "archive/zip.h"
#include "archive/zip_layout.h"
#include "archive/zip_test_util.h"

#ifndef CW_ZIP_CORPUS_DIR
#error "CW_ZIP_CORPUS_DIR must name testdata/zip_corpus (src/archive/CMakeLists.txt)"
#endif

namespace cw {
namespace {

using namespace zip_test;  // NOLINT: the shared fixture
using ::testing::HasSubstr;

struct Expectation {
  std::string verdict;  // accept, refuse, unpack-fails, any
  std::string code;     // as CodeName writes it: InvalidInput, Io
  std::string message;  // a part of the refusal
};

std::map<std::string, Expectation> ReadExpectations(const fs::path& file) {
  std::map<std::string, Expectation> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) fields.push_back(field);
    fields.resize(4);
    out[fields[0]] = {fields[1], fields[2], fields[3]};
  }
  return out;
}

UnpackLimits CorpusLimits() {
  UnpackLimits limits;
  limits.max_bytes = 10'000'000;  // make_zip_corpus.py's MAX_BYTES
  limits.max_entries = 100;       // and MAX_ENTRIES
  return limits;
}

class ZipCorpusTest : public ZipTest {
 protected:
  // Runs the layout reader alone: the plan for an empty destination.
  Result<UnpackPlan> Plan(const fs::path& zip, const fs::path& dest) {
    fs::create_directories(dest);
    CW_ASSIGN_OR_RETURN(ZipHandle za, OpenCheckedZip(zip, CorpusLimits()));
    return PlanUnpack(za.get(), zip, fs::canonical(dest), CorpusLimits());
  }

  // What was unpacked is only files and folders, with no special bits.
  void CheckUnpacked(const fs::path& dest) {
    for (auto it = fs::recursive_directory_iterator(dest); it != fs::recursive_directory_iterator();
         ++it) {
      struct stat st;
      ASSERT_EQ(::lstat(it->path().c_str(), &st), 0) << it->path();
      EXPECT_TRUE(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) << it->path();
      EXPECT_EQ(st.st_mode & 07000, 0u) << it->path();
    }
  }
};

TEST_F(ZipCorpusTest, EveryFileIsRefusedOrAcceptedAsExpected) {
  const fs::path corpus = CW_ZIP_CORPUS_DIR;
  std::map<std::string, Expectation> expected = ReadExpectations(corpus / "expected.tsv");
  ASSERT_GT(expected.size(), 100u) << "run src/archive/testdata/make_zip_corpus.py";
  std::set<std::string> seen;
  std::map<std::string, int> verdicts;
  int n = 0;
  for (const fs::directory_entry& file : fs::directory_iterator(corpus)) {
    const std::string name = file.path().filename().string();
    if (name == "expected.tsv") continue;
    SCOPED_TRACE(name);
    seen.insert(name);
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "no line in expected.tsv";
    const Expectation& want = it->second;

    // Each file in a sandbox of its own, so a stray write would show.
    const fs::path sandbox = root_ / std::to_string(n++);
    const fs::path zip = sandbox / name;
    fs::create_directories(sandbox);
    fs::copy_file(file.path(), zip);

    // 1. Our own central directory reader, alone (libzip refuses many of
    // these first, so ExtractZip alone would rarely reach it).
    Result<ZipLayout> layout = ReadZipLayout(zip, CorpusLimits());
    if (!layout.ok()) {
      EXPECT_EQ(layout.status().code(), Code::kInvalidInput) << layout.status().ToString();
    }
    if (want.verdict == "accept" || want.verdict == "unpack-fails") {
      EXPECT_TRUE(layout.ok()) << layout.status().ToString();
    }

    // 2. The layout reader, then ExtractZip: a refusal is the same refusal.
    Result<UnpackPlan> plan = Plan(zip, sandbox / "dest");
    EXPECT_EQ(Listing(sandbox / "dest"), std::vector<std::string>{});
    Result<ExtractStats> extracted = ExtractZip(zip, sandbox / "dest", CorpusLimits());
    if (!plan.ok()) {
      ASSERT_FALSE(extracted.ok());
      EXPECT_EQ(extracted.status().ToString(), plan.status().ToString());
    }
    // 3. Never a write outside dest; after a failure, dest is empty.
    std::vector<std::string> outside;
    for (const std::string& path : Listing(sandbox)) {
      if (path != name && path != "dest" && path.rfind("dest/", 0) != 0) outside.push_back(path);
    }
    EXPECT_EQ(outside, std::vector<std::string>{});
    if (extracted.ok()) {
      CheckUnpacked(sandbox / "dest");
    } else {
      EXPECT_EQ(Listing(sandbox / "dest"), std::vector<std::string>{});
    }

    // 4. The verdict.
    const Status& got = plan.ok() ? extracted.status() : plan.status();
    std::string outcome = !plan.ok() ? "refuse" : extracted.ok() ? "accept" : "unpack-fails";
    ++verdicts[outcome];
    if (std::getenv("CW_ZIP_CORPUS_VERBOSE") != nullptr) {
      std::cerr << name << "\t" << outcome << "\t"
                << (got.ok() ? "" : got.ToString().substr(0, 200)) << "\n";
    }
    if (want.verdict == "any") continue;
    EXPECT_EQ(outcome, want.verdict) << got.ToString();
    if (outcome != "accept" && outcome == want.verdict) {
      EXPECT_EQ(CodeName(got.code()), want.code) << got.ToString();
      EXPECT_THAT(got.message(), HasSubstr(want.message));
    }
    if (outcome == "accept" && plan.ok() && extracted.ok()) {
      std::uint64_t files = 0;
      for (const PlannedEntry& entry : plan->entries) {
        EXPECT_TRUE(fs::exists(sandbox / "dest" / entry.relative)) << entry.name;
        if (!entry.is_dir) ++files;
      }
      EXPECT_LE(extracted->files, files);  // a name given twice is one file
      EXPECT_LE(extracted->bytes, plan->declared_bytes);
    }
  }
  for (const auto& [name, want] : expected) {
    EXPECT_EQ(seen.count(name), 1u) << name << " is missing";
  }
  // Each kind of outcome is exercised.
  EXPECT_GT(verdicts["accept"], 10);
  EXPECT_GT(verdicts["refuse"], 30);
  EXPECT_GT(verdicts["unpack-fails"], 3);
}

}  // namespace
}  // namespace cw
