#include "storage/hash.h"

#include <gtest/gtest.h>

#include "storage/test_util.h"

namespace cw {
namespace {

class HashTest : public testing_util::TempDirTest {};

TEST_F(HashTest, Sha256OfStrings) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(HashTest, FilesKnownVectors) {
  WriteFile(root_ / "empty", "");
  WriteFile(root_ / "abc", "abc");
  EXPECT_EQ(*Md5FileHex(root_ / "empty"), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(*Md5FileHex(root_ / "abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(*Sha256FileHex(root_ / "empty"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(*Sha256FileHex(root_ / "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(HashTest, FileLargerThanOneChunkMatchesStringDigest) {
  std::string big(200 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  WriteFile(root_ / "big", big);
  EXPECT_EQ(*Sha256FileHex(root_ / "big"), Sha256Hex(big));
}

TEST_F(HashTest, MissingFileIsNotFound) {
  Result<std::string> md5 = Md5FileHex(root_ / "nope");
  EXPECT_EQ(md5.status().code(), Code::kNotFound);
  EXPECT_EQ(md5.status().message(), "no file at " + (root_ / "nope").string());
  EXPECT_EQ(Sha256FileHex(root_ / "nope").status().code(), Code::kNotFound);
}

TEST_F(HashTest, FolderIsInvalidInput) {
  EXPECT_EQ(Sha256FileHex(root_).status().code(), Code::kInvalidInput);
}

}  // namespace
}  // namespace cw
