#include "common/safe_file.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <future>

#include <gtest/gtest.h>

#include "common/files.h"

namespace cw {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SafeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeUniqueDir(fs::temp_directory_path(), "cw-safe-");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }
  fs::path dir_;
};

// Runs `read` on another thread and fails the test (instead of hanging it)
// when it has not returned within two seconds; a reader stuck on the FIFO is
// then released by opening the FIFO for writing.
Result<std::string> BoundedRead(const fs::path& fifo, std::uint64_t cap) {
  auto future = std::async(std::launch::async, [&] { return ReadRegularFile(fifo, cap); });
  if (future.wait_for(2s) != std::future_status::ready) {
    ADD_FAILURE() << "reading a FIFO blocked";
    int unblock = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    if (unblock >= 0) ::close(unblock);
  }
  return future.get();
}

TEST_F(SafeFileTest, ReadsARegularFile) {
  Write(dir_ / "scores.txt", "a: 1\n");
  auto text = ReadRegularFile(dir_ / "scores.txt", 100);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "a: 1\n");
  EXPECT_TRUE(IsRegularFileNoFollow(dir_ / "scores.txt"));

  auto fd = OpenRegularFile(dir_ / "scores.txt");
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0) << "O_NONBLOCK left set";
}

TEST_F(SafeFileTest, MissingIsNotFound) {
  auto text = ReadRegularFile(dir_ / "scores.txt", 100);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Code::kNotFound);
  EXPECT_FALSE(IsRegularFileNoFollow(dir_ / "scores.txt"));
}

TEST_F(SafeFileTest, LinkIsRefusedAndNotFollowed) {
  Write(dir_ / "secret", "MARKER-7f3a\n");
  fs::create_symlink(dir_ / "secret", dir_ / "scores.txt");
  auto text = ReadRegularFile(dir_ / "scores.txt", 100);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Code::kInvalidInput);
  EXPECT_EQ(text.status().message().find("MARKER"), std::string::npos);
  EXPECT_NE(text.status().message().find("scores.txt is a symbolic link"), std::string::npos)
      << text.status().message();
  // Only the file's name: the host path stays out of the message.
  EXPECT_EQ(text.status().message().find(dir_.string()), std::string::npos);
  EXPECT_FALSE(IsRegularFileNoFollow(dir_ / "scores.txt"));
  // A link to a folder, and a dangling link, are links too.
  fs::create_directory_symlink("/etc", dir_ / "etc");
  EXPECT_EQ(ReadRegularFile(dir_ / "etc", 100).status().code(), Code::kInvalidInput);
  fs::create_symlink(dir_ / "nowhere", dir_ / "dangling");
  EXPECT_EQ(ReadRegularFile(dir_ / "dangling", 100).status().code(), Code::kInvalidInput);
}

TEST_F(SafeFileTest, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((dir_ / "scores.json").c_str(), 0600), 0);
  auto text = BoundedRead(dir_ / "scores.json", 100);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Code::kInvalidInput);
  EXPECT_EQ(text.status().message(), "scores.json is not a regular file (a FIFO)");
}

TEST_F(SafeFileTest, FolderAndSocketAreRefused) {
  fs::create_directory(dir_ / "scores.txt");
  auto folder = ReadRegularFile(dir_ / "scores.txt", 100);
  EXPECT_EQ(folder.status().message(), "scores.txt is not a regular file (a folder)");

  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock = (dir_ / "scores.json").string();
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto socket = ReadRegularFile(dir_ / "scores.json", 100);
  ::close(s);
  EXPECT_EQ(socket.status().message(), "scores.json is not a regular file (a socket)");
}

TEST_F(SafeFileTest, TooBigIsRefusedWithSizes) {
  Write(dir_ / "scores.txt", std::string(2 * 1024 * 1024 + 300 * 1024, 'x'));
  auto text = ReadRegularFile(dir_ / "scores.txt", 1024 * 1024);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), Code::kInvalidInput);
  EXPECT_EQ(text.status().message(), "scores.txt is 2.3 MB, more than the 1 MB allowed");
  // Exactly at the cap is fine.
  Write(dir_ / "exact", std::string(1000, 'y'));
  EXPECT_TRUE(ReadRegularFile(dir_ / "exact", 1000).ok());
  EXPECT_FALSE(ReadRegularFile(dir_ / "exact", 999).ok());
}

TEST_F(SafeFileTest, SparseHugeFileIsRefusedWithoutReadingIt) {
  // 10 GB that take no disk: refused from its size, not by reading it.
  int fd = ::open((dir_ / "scores.txt").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 10LL * 1000 * 1000 * 1000), 0);
  ::close(fd);
  auto start = std::chrono::steady_clock::now();
  auto text = ReadRegularFile(dir_ / "scores.txt", 1024 * 1024);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(text.status().message(), "scores.txt is 9.3 GB, more than the 1 MB allowed");
}

TEST(DescribeBytes, Units) {
  EXPECT_EQ(DescribeBytes(0), "0 bytes");
  EXPECT_EQ(DescribeBytes(1), "1 byte");
  EXPECT_EQ(DescribeBytes(1023), "1023 bytes");
  EXPECT_EQ(DescribeBytes(1024), "1 KB");
  EXPECT_EQ(DescribeBytes(1024 * 1024), "1 MB");
  EXPECT_EQ(DescribeBytes(12897484), "12.3 MB");
}

}  // namespace
}  // namespace cw
