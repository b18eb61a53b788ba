#include "site/live_queue.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "site/utf8.h"

namespace cw {

namespace {

std::string Message(const std::string& kind, const std::string& text) {
  nlohmann::json j = {{"kind", kind}, {"message", text}};
  // Text is sanitized on the way in; `replace` guards what slipped through.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

LiveQueue::LiveQueue(std::string kind, std::size_t max_pending, std::size_t max_frame_text)
    : kind_(std::move(kind)), max_pending_(max_pending), max_frame_text_(std::max<std::size_t>(max_frame_text, 4)) {}

void LiveQueue::Drop(std::size_t bytes) {
  dropped_total_ += bytes;
  dropped_unreported_ += bytes;
}

void LiveQueue::Lost(std::size_t bytes, std::uint64_t note_for) {
  if (note_for > 0) {
    dropped_unreported_ += note_for;
  } else {
    Drop(bytes);
  }
}

void LiveQueue::DropAll() {
  for (const Item& item : items_) Lost(item.text.size(), item.note_for);
  items_.clear();
  pending_ = 0;
}

void LiveQueue::QueueDropNote() {
  if (dropped_unreported_ == 0) return;
  std::string note = "[codabench-worker: " + std::to_string(dropped_unreported_) +
                     " bytes of output were not shown live; the full log is in storage]\n";
  // The note may overshoot the bound by its own few bytes: it is what
  // explains the gap.
  pending_ += note.size();
  items_.push_back({Message(kind_, note), true, dropped_unreported_});
  dropped_unreported_ = 0;
}

bool LiveQueue::PushText(std::string_view raw) {
  if (raw.empty()) return true;
  if (pending_ + raw.size() > max_pending_) {
    Drop(raw.size());
    return false;
  }
  QueueDropNote();
  std::string text = SanitizeUtf8(raw);
  AppendText(text);
  return true;
}

void LiveQueue::AppendText(std::string_view text) {
  while (!text.empty()) {
    if (items_.empty() || items_.back().is_json || items_.back().text.size() >= max_frame_text_) {
      items_.push_back({"", false, 0});
    }
    std::string& last = items_.back().text;
    std::size_t room = max_frame_text_ - last.size();
    std::size_t take = Utf8PrefixLength(text, room);
    if (take == 0) {
      if (last.empty()) take = std::min(text.size(), room);  // never loop on a giant "character"
      else {
        items_.push_back({"", false, 0});
        continue;
      }
    }
    last.append(text.substr(0, take));
    pending_ += take;
    text.remove_prefix(take);
  }
}

bool LiveQueue::PushMessage(std::string json) {
  if (pending_ + json.size() > max_pending_) {
    Drop(json.size());
    return false;
  }
  QueueDropNote();
  pending_ += json.size();
  items_.push_back({std::move(json), true, 0});
  return true;
}

std::optional<LiveQueue::Frame> LiveQueue::Pop() {
  if (items_.empty()) return std::nullopt;
  Item item = std::move(items_.front());
  items_.pop_front();
  Frame frame;
  frame.bytes = item.text.size();
  frame.note_for = item.note_for;
  pending_ -= std::min(pending_, frame.bytes);
  frame.json = item.is_json ? std::move(item.text) : Message(kind_, item.text);
  return frame;
}

}  // namespace cw
