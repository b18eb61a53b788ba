// Splits the multiplexed output stream of a container without a TTY into its
// stdout and stderr parts. Each frame is an 8-byte header {stream, 0, 0, 0,
// big-endian uint32 size} and then `size` bytes of payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

#include "engine/engine.h"

namespace cw {

class StreamDemuxer {
 public:
  using Sink = std::function<void(StreamKind, std::string_view)>;

  explicit StreamDemuxer(Sink sink) : sink_(std::move(sink)) {}

  // Accepts the stream in chunks cut anywhere. Payload goes to the sink as it
  // arrives, in pieces, so a frame of any size costs no memory here.
  void Feed(std::string_view data);

  // False when the input so far stopped inside a frame (a truncated stream).
  bool AtFrameBoundary() const { return header_len_ == 0 && remaining_ == 0; }

 private:
  void ParseHeader();

  Sink sink_;
  unsigned char header_[8];
  size_t header_len_ = 0;
  uint32_t remaining_ = 0;  // payload bytes of the current frame still to come
  StreamKind kind_ = StreamKind::kStdout;
  // Set when a header made no sense: the stream is not multiplexed (a TTY
  // container), so everything from then on is passed through as stdout.
  bool raw_ = false;
};

}  // namespace cw
