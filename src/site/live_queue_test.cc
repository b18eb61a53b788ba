#include "site/live_queue.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cw {
namespace {

nlohmann::json PopJson(LiveQueue& q) {
  auto frame = q.Pop();
  EXPECT_TRUE(frame.has_value());
  if (!frame) return nullptr;
  return nlohmann::json::parse(frame->json);
}

TEST(LiveQueue, CoalescesSmallChunksIntoOneMessage) {
  LiveQueue q("program", 1 << 20, 64 << 10);
  EXPECT_TRUE(q.PushText("epoch 1\n"));
  EXPECT_TRUE(q.PushText("epoch 2\n"));
  EXPECT_EQ(q.pending_bytes(), 16u);
  auto j = PopJson(q);
  EXPECT_EQ(j, (nlohmann::json{{"kind", "program"}, {"message", "epoch 1\nepoch 2\n"}}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pending_bytes(), 0u);
}

TEST(LiveQueue, CutsFramesAtTheLimitBetweenCharacters) {
  LiveQueue q("ingestion", 1 << 20, 8);
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_TRUE(q.PushText("abcdef" + euro + "gh"));  // the euro sign does not fit in the first 8 bytes
  EXPECT_EQ(PopJson(q)["message"], "abcdef");
  EXPECT_EQ(PopJson(q)["message"], euro + "gh");
  EXPECT_FALSE(q.Pop().has_value());
}

TEST(LiveQueue, WholeMessagesStandAlone) {
  LiveQueue q("program", 1 << 20, 1024);
  q.PushText("a");
  q.PushMessage(R"({"kind": "detailed_result_update"})");
  q.PushText("b");
  EXPECT_EQ(PopJson(q)["message"], "a");
  EXPECT_EQ(PopJson(q), (nlohmann::json{{"kind", "detailed_result_update"}}));
  EXPECT_EQ(PopJson(q)["message"], "b");
}

TEST(LiveQueue, DropsWhenFullAndSaysSoWhenRoomReturns) {
  LiveQueue q("program", 100, 1024);
  EXPECT_TRUE(q.PushText(std::string(60, 'a')));
  EXPECT_FALSE(q.PushText(std::string(50, 'b')));
  EXPECT_FALSE(q.PushText(std::string(45, 'c')));
  EXPECT_EQ(q.dropped_bytes(), 95u);
  EXPECT_EQ(PopJson(q)["message"], std::string(60, 'a'));
  EXPECT_TRUE(q.PushText("d"));
  EXPECT_EQ(PopJson(q), (nlohmann::json{
                            {"kind", "program"},
                            {"message", "[codabench-worker: 95 bytes of output were not shown live; "
                                        "the full log is in storage]\n"}}));
  EXPECT_EQ(PopJson(q)["message"], "d");
  EXPECT_FALSE(q.Pop().has_value());
  EXPECT_EQ(q.dropped_bytes(), 95u);
}

TEST(LiveQueue, LostFramesAndDropAllCountToo) {
  LiveQueue q("program", 1000, 1024);
  q.PushText("hello");
  auto frame = q.Pop();
  ASSERT_TRUE(frame);
  q.Lost(frame->bytes, frame->note_for);
  q.PushText("12345678");  // goes after a note about the 5 lost bytes
  q.DropAll();
  EXPECT_EQ(q.dropped_bytes(), 13u);
  EXPECT_TRUE(q.empty());
  q.QueueDropNote();  // the dropped note's 5 bytes and the 8 dropped with it
  auto note = PopJson(q);
  EXPECT_NE(note["message"].get<std::string>().find("13 bytes of output were not shown live"), std::string::npos);
  q.QueueDropNote();  // nothing new was dropped
  EXPECT_TRUE(q.empty());
}

TEST(LiveQueue, InvalidBytesStillMakeValidJson) {
  LiveQueue q("program", 1000, 1024);
  q.PushText("bad \xFF\xFE byte \xC3");
  auto frame = q.Pop();
  ASSERT_TRUE(frame);
  auto j = nlohmann::json::parse(frame->json);
  EXPECT_EQ(j["message"], "bad \xEF\xBF\xBD\xEF\xBF\xBD byte \xEF\xBF\xBD");
}

}  // namespace
}  // namespace cw
