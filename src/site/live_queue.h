// What a live socket has yet to send. Bounded, because a program can print
// faster than the site takes it and the job must never wait for the site:
// past the bound, output is dropped and counted, and the participant is told
// how much they did not see once room returns. Small chunks of output are
// coalesced into one message so a chatty program does not mean one frame per
// line. Not thread-safe: the socket guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace cw {

class LiveQueue {
 public:
  // Output text becomes {"kind": <kind>, "message": <text>} messages of at
  // most `max_frame_text` bytes of text; at most `max_pending` bytes wait.
  LiveQueue(std::string kind, std::size_t max_pending, std::size_t max_frame_text);

  // Output to show (valid UTF-8; invalid bytes become U+FFFD). False when
  // there was no room and it was dropped.
  bool PushText(std::string_view text);
  // A whole JSON message, sent as its own frame. False when dropped.
  bool PushMessage(std::string json);

  struct Frame {
    std::string json;
    std::size_t bytes = 0;         // what it counts against the bound
    std::uint64_t note_for = 0;    // a drop note: the dropped bytes it reports
  };
  // The next frame to send, oldest first.
  std::optional<Frame> Pop();

  // A frame that was taken but not delivered (the connection broke): its
  // output counts as dropped (a lost note's count goes to the next note).
  void Lost(std::size_t bytes, std::uint64_t note_for);
  // Drops everything waiting (a socket that will never connect).
  void DropAll();
  // Queues the note about dropped output now, if there is one to give.
  void QueueDropNote();

  bool empty() const { return items_.empty(); }
  std::size_t pending_bytes() const { return pending_; }
  std::uint64_t dropped_bytes() const { return dropped_total_; }

 private:
  struct Item {
    std::string text;  // output text, or a whole JSON message
    bool is_json;
    std::uint64_t note_for = 0;
  };
  void Drop(std::size_t bytes);
  void AppendText(std::string_view text);

  std::string kind_;
  std::size_t max_pending_;
  std::size_t max_frame_text_;
  std::deque<Item> items_;
  std::size_t pending_ = 0;
  std::uint64_t dropped_total_ = 0;
  std::uint64_t dropped_unreported_ = 0;
};

}  // namespace cw
