#include "gpu/slot_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <climits>

namespace cw {
namespace {

using ::testing::HasSubstr;

long long Bytes(std::string_view s) {
  auto r = ParseBytes(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? *r : -1;
}

TEST(ParseBytes, DockerStyleSizes) {
  EXPECT_EQ(Bytes("1024"), 1024);
  EXPECT_EQ(Bytes("0"), 0);
  EXPECT_EQ(Bytes("512m"), 512LL << 20);
  EXPECT_EQ(Bytes("16g"), 16LL << 30);
  EXPECT_EQ(Bytes("16G"), 16LL << 30);
  EXPECT_EQ(Bytes("1.5G"), 3LL << 29);
  EXPECT_EQ(Bytes("2GiB"), 2LL << 30);
  EXPECT_EQ(Bytes("2GB"), 2LL << 30);  // binary, as docker reads it
  EXPECT_EQ(Bytes("2gi"), 2LL << 30);
  EXPECT_EQ(Bytes("64k"), 64LL << 10);
  EXPECT_EQ(Bytes("1t"), 1LL << 40);
  EXPECT_EQ(Bytes("1P"), 1LL << 50);
  EXPECT_EQ(Bytes("100b"), 100);
  EXPECT_EQ(Bytes("100B"), 100);
  EXPECT_EQ(Bytes(" 8 g "), 8LL << 30);
  EXPECT_EQ(Bytes("0.5k"), 512);
  EXPECT_EQ(Bytes("1.0001k"), 1024);  // fractions of a byte are dropped
  EXPECT_EQ(Bytes("007m"), 7LL << 20);
}

TEST(ParseBytes, LargestSizes) {
  EXPECT_EQ(Bytes("8191P"), 8191LL << 50);
  EXPECT_EQ(Bytes("9223372036854775807"), LLONG_MAX);
  EXPECT_EQ(Bytes("8191.999999999999999999999P"), LLONG_MAX);
}

TEST(ParseBytes, Errors) {
  auto error = [](std::string_view s) {
    auto r = ParseBytes(s);
    if (r.ok()) return std::string("(no error)");
    EXPECT_EQ(r.status().code(), Code::kInvalidInput);
    return r.status().message();
  };
  const std::string how = " (write e.g. 1024, 512m, 16g, 1.5G or 2GiB)";
  EXPECT_EQ(error(""), "\"\" is not a size: it is empty" + how);
  EXPECT_EQ(error("  "), "\"  \" is not a size: it is empty" + how);
  EXPECT_EQ(error("-1g"), "\"-1g\" is not a size: it must start with a number of 0 or more" + how);
  EXPECT_EQ(error("g"), "\"g\" is not a size: it must start with a number of 0 or more" + how);
  EXPECT_EQ(error(".5g"), "\".5g\" is not a size: it must start with a number of 0 or more" + how);
  EXPECT_EQ(error("1.g"), "\"1.g\" is not a size: a digit must follow the '.'" + how);
  EXPECT_EQ(error("16x"), "\"16x\" is not a size: unknown unit \"x\"" + how);
  EXPECT_EQ(error("16gigs"), "\"16gigs\" is not a size: unknown unit \"gigs\"" + how);
  EXPECT_EQ(error("1.5.2g"), "\"1.5.2g\" is not a size: unknown unit \".2g\"" + how);
  EXPECT_EQ(error("1e9"), "\"1e9\" is not a size: unknown unit \"e9\"" + how);
  EXPECT_THAT(error("8192P"), HasSubstr("it is larger than 9223372036854775807 bytes"));
  EXPECT_THAT(error("9223372036854775808"), HasSubstr("it is larger than"));
  EXPECT_EQ(error("1.5"), "(no error)");  // 1 byte
}

TEST(ParseMountSpec, ReadWriteByDefault) {
  auto m = ParseMountSpec("/srv/datasets:/datasets");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->host_path, "/srv/datasets");
  EXPECT_EQ(m->container_path, "/datasets");
  EXPECT_FALSE(m->read_only);
}

TEST(ParseMountSpec, ModesAndTrailingSlashes) {
  auto ro = ParseMountSpec(" /srv/models/:/models/:ro ");
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(ro->host_path, "/srv/models");
  EXPECT_EQ(ro->container_path, "/models");
  EXPECT_TRUE(ro->read_only);
  auto rw = ParseMountSpec("/:/host:rw");
  ASSERT_TRUE(rw.ok());
  EXPECT_EQ(rw->host_path, "/");
  EXPECT_FALSE(rw->read_only);
  auto dots = ParseMountSpec("/a/..b/c.:/x/...");  // names that only look like ".."
  ASSERT_TRUE(dots.ok()) << dots.status().ToString();
}

TEST(ParseMountSpec, Errors) {
  auto error = [](std::string_view s) {
    auto r = ParseMountSpec(s);
    if (r.ok()) return std::string("(no error)");
    EXPECT_EQ(r.status().code(), Code::kInvalidInput);
    return r.status().message();
  };
  EXPECT_EQ(error("/data"),
            "mount \"/data\" must be /host/path:/container/path, optionally with :ro or :rw");
  EXPECT_EQ(error("/a:/b:ro:z"),
            "mount \"/a:/b:ro:z\" must be /host/path:/container/path, optionally with :ro or :rw");
  EXPECT_EQ(error("data:/data"), "mount \"data:/data\": the host path \"data\" must be absolute");
  EXPECT_EQ(error("/data:data"),
            "mount \"/data:data\": the container path \"data\" must be absolute");
  EXPECT_EQ(error(":/data"),
            "mount \":/data\": the host path is missing (write /host/path:/container/path[:ro])");
  EXPECT_EQ(error("/data:"),
            "mount \"/data:\": the container path is missing (write "
            "/host/path:/container/path[:ro])");
  EXPECT_EQ(error("/srv/../etc:/x"),
            "mount \"/srv/../etc:/x\": the host path \"/srv/../etc\" must not contain \"..\"");
  EXPECT_EQ(error("/srv:/app/.."),
            "mount \"/srv:/app/..\": the container path \"/app/..\" must not contain \"..\"");
  EXPECT_EQ(error("/srv:/"),
            "mount \"/srv:/\": the container path cannot be \"/\" (it would hide the image)");
  EXPECT_EQ(error("/srv://"),
            "mount \"/srv://\": the container path cannot be \"/\" (it would hide the image)");
  EXPECT_EQ(error("/a:/b:RO"), "mount \"/a:/b:RO\": \"RO\" is not a mode; use ro or rw");
  EXPECT_EQ(error("/a:/b:"), "mount \"/a:/b:\": \"\" is not a mode; use ro or rw");
}

}  // namespace
}  // namespace cw
