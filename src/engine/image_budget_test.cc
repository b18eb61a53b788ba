#include "engine/image_budget.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(NormalizeImageName, TheFormTheEngineListsTagsIn) {
  EXPECT_EQ(NormalizeImageName("python:3.12"), "python:3.12");
  EXPECT_EQ(NormalizeImageName("python"), "python:latest");
  EXPECT_EQ(NormalizeImageName("docker.io/library/python:3.12"), "python:3.12");
  EXPECT_EQ(NormalizeImageName("docker.io/codalab/codalab-legacy:py37"),
            "codalab/codalab-legacy:py37");
  EXPECT_EQ(NormalizeImageName("localhost:5000/x/y"), "localhost:5000/x/y:latest");
}

}  // namespace
}  // namespace cw
