#include "engine/stream_demux.h"

#include <algorithm>

namespace cw {

void StreamDemuxer::Feed(std::string_view data) {
  while (!data.empty()) {
    if (raw_) {
      sink_(StreamKind::kStdout, data);
      return;
    }
    if (remaining_ > 0) {
      size_t n = std::min<size_t>(remaining_, data.size());
      sink_(kind_, data.substr(0, n));
      remaining_ -= static_cast<uint32_t>(n);
      data.remove_prefix(n);
      continue;
    }
    size_t n = std::min(sizeof(header_) - header_len_, data.size());
    std::copy_n(data.data(), n, header_ + header_len_);
    header_len_ += n;
    data.remove_prefix(n);
    if (header_len_ == sizeof(header_)) ParseHeader();
  }
}

void StreamDemuxer::ParseHeader() {
  header_len_ = 0;
  const unsigned char* h = header_;
  // 0 is stdin (only seen with stdin attached), 3 is the engine's own errors.
  bool known_type = h[0] <= 3;
  if (!known_type || h[1] != 0 || h[2] != 0 || h[3] != 0) {
    raw_ = true;
    sink_(StreamKind::kStdout,
          std::string_view(reinterpret_cast<const char*>(header_), sizeof(header_)));
    return;
  }
  kind_ = h[0] >= 2 ? StreamKind::kStderr : StreamKind::kStdout;
  remaining_ =
      (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | uint32_t{h[7]};
}

}  // namespace cw
