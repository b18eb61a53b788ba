#include "common/files.h"

#include <fstream>

#include <gtest/gtest.h>

namespace cw {
namespace {
namespace fs = std::filesystem;

TEST(Files, HostPathTranslation) {
  EXPECT_EQ(ToHostPath("/codabench/job-1/output", "/codabench", "/srv/cb/"),
            fs::path("/srv/cb/job-1/output"));
  EXPECT_EQ(ToHostPath("/codabench/", "/codabench", "/srv/cb"), fs::path("/srv/cb"));
  EXPECT_EQ(ToHostPath("/tmp/cb/x", "/tmp/cb/", "/tmp/cb/"), fs::path("/tmp/cb/x"));
  EXPECT_EQ(ToHostPath("/elsewhere/x", "/codabench", "/srv/cb"), fs::path("/elsewhere/x"));
}

TEST(Files, CopyTreeSkipsSymlinks) {
  auto root = MakeUniqueDir(fs::temp_directory_path(), "cw-files-");
  ASSERT_TRUE(root.ok());
  fs::create_directories(*root / "src/sub");
  std::ofstream(*root / "src/a.txt") << "a";
  std::ofstream(*root / "src/sub/b.txt") << "bb";
  fs::create_symlink("/etc/passwd", *root / "src/leak");
  ASSERT_TRUE(CopyTreeContents(*root / "src", *root / "dst").ok());
  EXPECT_TRUE(fs::exists(*root / "dst/a.txt"));
  EXPECT_TRUE(fs::exists(*root / "dst/sub/b.txt"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(*root / "dst/leak")));
  EXPECT_EQ(TreeSize(*root / "dst"), 3u);
  fs::remove_all(*root);
}

TEST(Files, UniqueDirsDiffer) {
  auto a = MakeUniqueDir(fs::temp_directory_path(), "cw-u-");
  auto b = MakeUniqueDir(fs::temp_directory_path(), "cw-u-");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  fs::remove_all(*a);
  fs::remove_all(*b);
}

}  // namespace
}  // namespace cw
