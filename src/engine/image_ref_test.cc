#include "engine/image_ref.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

ImageRef Parse(std::string_view s) {
  Result<ImageRef> r = ParseImageRef(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? r.value() : ImageRef{};
}

TEST(ImageRefTest, NameAndTag) {
  ImageRef r = Parse("python:3.11");
  EXPECT_EQ(r.repository, "python");
  EXPECT_EQ(r.tag, "3.11");
  EXPECT_EQ(r.digest, "");
  EXPECT_EQ(r.FromImage(), "python");
  EXPECT_EQ(r.ToString(), "python:3.11");
}

TEST(ImageRefTest, NamespacedRepository) {
  ImageRef r = Parse("codalab/codalab-legacy:py37");
  EXPECT_EQ(r.repository, "codalab/codalab-legacy");
  EXPECT_EQ(r.tag, "py37");
}

TEST(ImageRefTest, NamesARegistryByDockersRule) {
  for (const char* named : {"ghcr.io/team/model:1", "localhost:5000/x/y", "localhost/x:1",
                            "registry.invalid/a/b"}) {
    EXPECT_TRUE(ParseImageRef(named)->NamesRegistry()) << named;
  }
  for (const char* bare : {"python:3.12", "codalab/codalab-legacy:py37", "team/model:1", "busybox"}) {
    EXPECT_FALSE(ParseImageRef(bare)->NamesRegistry()) << bare;
  }
}

TEST(ImageRefTest, NoTagMeansLatest) {
  EXPECT_EQ(Parse("ubuntu").tag, "latest");
  EXPECT_EQ(Parse("codalab/codalab-legacy").ToString(), "codalab/codalab-legacy:latest");
}

TEST(ImageRefTest, RegistryPortIsNotATag) {
  ImageRef r = Parse("localhost:5000/foo/bar:tag");
  EXPECT_EQ(r.repository, "localhost:5000/foo/bar");
  EXPECT_EQ(r.tag, "tag");

  ImageRef untagged = Parse("localhost:5000/foo/bar");
  EXPECT_EQ(untagged.repository, "localhost:5000/foo/bar");
  EXPECT_EQ(untagged.tag, "latest");
}

TEST(ImageRefTest, Digest) {
  const std::string digest =
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  ImageRef r = Parse("repo@" + digest);
  EXPECT_EQ(r.repository, "repo");
  EXPECT_EQ(r.tag, "");
  EXPECT_EQ(r.digest, digest);
  EXPECT_EQ(r.FromImage(), "repo@" + digest);
  EXPECT_EQ(r.ToString(), "repo@" + digest);

  ImageRef both = Parse("reg:5000/team/img:1.0@" + digest);
  EXPECT_EQ(both.repository, "reg:5000/team/img");
  EXPECT_EQ(both.tag, "");  // the engine pulls by digest
  EXPECT_EQ(both.FromImage(), "reg:5000/team/img@" + digest);
}

TEST(ImageRefTest, Invalid) {
  for (std::string_view bad : {"", "python:", ":3.11", "py thon", "repo@nodigest", "repo:ta/g",
                               "repo:-x", "/repo", "repo/"}) {
    Result<ImageRef> r = ParseImageRef(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidInput) << bad;
    }
  }
}

}  // namespace
}  // namespace cw
