#include "sandbox/sandbox_image.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/files.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw-sandbox-" + RandomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }
  std::string ReadFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // The program, written out and run here: it is a static executable.
  std::string Run(const std::string& args, int* code) {
    fs::path program = dir_ / "sandbox";
    if (!fs::exists(program)) {
      std::ofstream(program, std::ios::binary) << SandboxProgramBytes();
      fs::permissions(program, fs::perms::owner_all);
    }
    std::string cmd = program.string() + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    int status = p ? pclose(p) : -1;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
  }
  fs::path dir_;
};

TEST_F(SandboxTest, TheReferenceIsTheProgramsDigest) {
  std::string ref = SandboxImageReference();
  ASSERT_EQ(ref.rfind("localhost/codabench-worker/sandbox:", 0), 0u) << ref;
  std::string tag = ref.substr(ref.find(':') + 1);
  EXPECT_EQ(tag.size(), 12u);
  EXPECT_EQ(tag.find_first_not_of("0123456789abcdef"), std::string::npos) << tag;
  EXPECT_EQ(SandboxImageReference(), ref);
  // A static ELF executable, not an empty blob.
  std::string_view program = SandboxProgramBytes();
  ASSERT_GT(program.size(), 1000u);
  EXPECT_EQ(program.substr(0, 4), std::string_view("\x7f" "ELF", 4));
}

TEST_F(SandboxTest, TheLayerIsATarThatTarReadsBack) {
  std::string tar = SandboxLayerTar();
  EXPECT_EQ(tar.size() % 512, 0u);
  std::ofstream(dir_ / "layer.tar", std::ios::binary) << tar;
  fs::create_directories(dir_ / "root");
  std::string cmd = "tar -C " + (dir_ / "root").string() + " -xf " + (dir_ / "layer.tar").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir_ / "root")) entries.push_back(e.path().filename());
  EXPECT_EQ(entries, std::vector<fs::path>{"sandbox"});
  EXPECT_EQ(ReadFile(dir_ / "root" / "sandbox"), SandboxProgramBytes());
  EXPECT_EQ(fs::status(dir_ / "root" / "sandbox").permissions() & fs::perms::all,
            fs::perms(0755));
}

TEST_F(SandboxTest, RemoveEmptiesAFolderWhateverItsModesAndDepth) {
  fs::path target = dir_ / "target";
  fs::create_directories(target / "locked" / "inner");
  std::ofstream(target / "locked" / "inner" / "f") << "data";
  std::ofstream(target / "top") << "x";
  fs::permissions(target / "locked" / "inner" / "f", fs::perms::none);
  fs::permissions(target / "locked" / "inner", fs::perms::owner_read);
  fs::permissions(target / "locked", fs::perms::none);
  // Deeper than PATH_MAX: no whole path names the innermost folder.
  int fd = open(target.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  const std::string name(100, 'd');
  for (int level = 0; level < 60; ++level) {
    ASSERT_EQ(mkdirat(fd, name.c_str(), 0700), 0);
    int sub = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY);
    close(fd);
    ASSERT_GE(sub, 0);
    fd = sub;
  }
  close(fd);

  int code = -1;
  std::string out = Run("remove " + target.string(), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(fs::exists(target)) << "the folder itself stays";
  EXPECT_TRUE(fs::is_empty(target));
  // A folder already gone is nothing to do.
  EXPECT_EQ((Run("remove " + (dir_ / "gone").string(), &code), code), 0);
}

TEST_F(SandboxTest, SizeCountsWhatTheFilesTakeOnDisk) {
  fs::path target = dir_ / "target";
  fs::create_directories(target / "hidden");
  std::ofstream(target / "hidden" / "big") << std::string(1 << 20, 'x');
  fs::permissions(target / "hidden", fs::perms::none);
  int code = -1;
  std::string out = Run("size " + target.string(), &code);
  EXPECT_EQ(code, 0) << out;
  long long bytes = std::atoll(out.c_str());
  EXPECT_GE(bytes, 1 << 20) << out;
  EXPECT_LT(bytes, 2 << 20) << out;
}

// A holder that must keep its programs from other slots' networks adds a
// "prohibit" route to each in its own namespace before it waits.
TEST_F(SandboxTest, HoldProhibitsTheNetworksItIsGivenInItsOwnNamespace) {
  if (geteuid() != 0 || system("command -v unshare >/dev/null && command -v ip >/dev/null") != 0) {
    GTEST_SKIP() << "needs root, unshare and ip (a network namespace of the test's own)";
  }
  int code = -1;
  // In a namespace of its own: the routes, then a program's view of them,
  // then the holder stopped as the engine stops it.
  std::string out = Run("--usage", &code);  // writes the program out
  fs::path program = dir_ / "sandbox";
  std::string script = "unshare --net sh -c '" + program.string() +
                       " hold 10.99.0.0/24 fd00:99::/64 & sleep 0.3; ip route show type prohibit; "
                       "ip -6 route show type prohibit; "
                       "ip route get 10.99.0.7 2>&1; kill -TERM $!; wait $!; echo exit=$?' 2>&1";
  FILE* p = popen(script.c_str(), "r");
  ASSERT_NE(p, nullptr);
  out.clear();
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  EXPECT_NE(out.find("prohibit 10.99.0.0/24"), std::string::npos) << out;
  EXPECT_NE(out.find("prohibit fd00:99::/64"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=0"), std::string::npos) << "SIGTERM ends it cleanly: " << out;

  EXPECT_NE(Run("hold 10.99.0.0", &code).find("cannot prohibit the route to 10.99.0.0"),
            std::string::npos);
  EXPECT_EQ(code, 1) << "no prefix length";
}

TEST_F(SandboxTest, AnythingElseIsAUsageError) {
  int code = -1;
  std::string out = Run("format /", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("usage: sandbox"), std::string::npos) << out;
}

}  // namespace
}  // namespace cw
