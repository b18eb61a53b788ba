#include "engine/stream_demux.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cw {
namespace {

std::string Frame(unsigned char stream, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>(n >> 16);
  f[6] = static_cast<char>(n >> 8);
  f[7] = static_cast<char>(n);
  return f + std::string(payload);
}

// Collects what the demuxer delivers, joining adjacent pieces of one stream.
struct Collector {
  std::string out, err;
  std::vector<std::pair<StreamKind, std::string>> runs;
  size_t calls = 0;
  size_t largest_piece = 0;

  StreamDemuxer::Sink Sink() {
    return [this](StreamKind kind, std::string_view data) {
      ++calls;
      largest_piece = std::max(largest_piece, data.size());
      EXPECT_FALSE(data.empty());
      (kind == StreamKind::kStdout ? out : err).append(data);
      if (runs.empty() || runs.back().first != kind) runs.emplace_back(kind, "");
      runs.back().second.append(data);
    };
  }
};

TEST(StreamDemuxerTest, SplitsStdoutAndStderr) {
  Collector c;
  StreamDemuxer d(c.Sink());
  d.Feed(Frame(1, "out1\n") + Frame(2, "err1\n") + Frame(1, "out2\n"));
  EXPECT_EQ(c.out, "out1\nout2\n");
  EXPECT_EQ(c.err, "err1\n");
  ASSERT_EQ(c.runs.size(), 3u);
  EXPECT_EQ(c.runs[1], (std::pair<StreamKind, std::string>{StreamKind::kStderr, "err1\n"}));
  EXPECT_TRUE(d.AtFrameBoundary());
}

TEST(StreamDemuxerTest, SplitAtEveryOffsetGivesTheSameResult) {
  std::string input = Frame(1, "hello ") + Frame(2, "oops") + Frame(1, "") + Frame(1, "world") +
                      Frame(2, std::string(300, 'e'));
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Collector c;
    StreamDemuxer d(c.Sink());
    d.Feed(std::string_view(input).substr(0, cut));
    d.Feed(std::string_view(input).substr(cut));
    EXPECT_EQ(c.out, "hello world") << "cut at " << cut;
    EXPECT_EQ(c.err, "oops" + std::string(300, 'e')) << "cut at " << cut;
    EXPECT_TRUE(d.AtFrameBoundary());
  }
}

TEST(StreamDemuxerTest, SplitAtEveryPairOfOffsets) {
  std::string input = Frame(2, "ab") + Frame(1, "cde") + Frame(2, "f");
  for (size_t i = 0; i <= input.size(); ++i) {
    for (size_t j = i; j <= input.size(); ++j) {
      Collector c;
      StreamDemuxer d(c.Sink());
      std::string_view in(input);
      d.Feed(in.substr(0, i));
      d.Feed(in.substr(i, j - i));
      d.Feed(in.substr(j));
      EXPECT_EQ(c.out, "cde");
      EXPECT_EQ(c.err, "abf");
      ASSERT_EQ(c.runs.size(), 3u);
    }
  }
}

TEST(StreamDemuxerTest, OneByteAtATime) {
  std::string input = Frame(1, "x") + Frame(2, "yy") + Frame(1, "zzz");
  Collector c;
  StreamDemuxer d(c.Sink());
  for (char ch : input) {
    d.Feed(std::string_view(&ch, 1));
  }
  EXPECT_EQ(c.out, "xzzz");
  EXPECT_EQ(c.err, "yy");
}

TEST(StreamDemuxerTest, BigFrameIsDeliveredInPiecesWithoutBuffering) {
  const size_t size = 100 << 20;  // 100 MB in one frame
  std::string header = Frame(1, "").substr(0, 4);
  header += static_cast<char>(size >> 24);
  header += static_cast<char>(size >> 16);
  header += static_cast<char>(size >> 8);
  header += static_cast<char>(size);
  size_t delivered = 0, calls = 0, largest = 0;
  std::string err;
  StreamDemuxer d([&](StreamKind kind, std::string_view data) {
    if (kind == StreamKind::kStderr) {
      err.append(data);
      return;
    }
    delivered += data.size();
    largest = std::max(largest, data.size());
    ++calls;
  });
  d.Feed(header);
  std::string chunk(16 << 10, 'a');
  for (size_t sent = 0; sent < size; sent += chunk.size()) {
    d.Feed(std::string_view(chunk).substr(0, std::min(chunk.size(), size - sent)));
    EXPECT_EQ(delivered, std::min(size, sent + chunk.size()));  // nothing held back
  }
  EXPECT_EQ(delivered, size);
  EXPECT_LE(largest, chunk.size());
  EXPECT_TRUE(d.AtFrameBoundary());
  d.Feed(Frame(2, "after"));
  EXPECT_EQ(delivered, size);
  EXPECT_EQ(err, "after");
}

TEST(StreamDemuxerTest, StdinTypeCountsAsStdoutAndSystemErrAsStderr) {
  Collector c;
  StreamDemuxer d(c.Sink());
  d.Feed(Frame(0, "in") + Frame(3, "sys"));
  EXPECT_EQ(c.out, "in");
  EXPECT_EQ(c.err, "sys");
}

TEST(StreamDemuxerTest, TruncatedStreamIsNotAtFrameBoundary) {
  Collector c;
  StreamDemuxer d(c.Sink());
  std::string f = Frame(1, "abcdef");
  d.Feed(f.substr(0, 10));
  EXPECT_EQ(c.out, "ab");
  EXPECT_FALSE(d.AtFrameBoundary());
  StreamDemuxer d2(c.Sink());
  d2.Feed(f.substr(0, 3));
  EXPECT_FALSE(d2.AtFrameBoundary());
}

TEST(StreamDemuxerTest, UnframedInputPassesThroughAsStdout) {
  // What a container with a TTY sends: plain text, no headers.
  Collector c;
  StreamDemuxer d(c.Sink());
  d.Feed("hello from a tty\n");
  d.Feed("more");
  EXPECT_EQ(c.out, "hello from a tty\nmore");
  EXPECT_EQ(c.err, "");
}

}  // namespace
}  // namespace cw
