#include "broker/amqp_table.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

using json = nlohmann::json;

TEST(AmqpTable, RoundTrip) {
  json in = {{"task", "compute_worker_run"},
             {"retries", 0},
             {"timelimit", {nullptr, 60}},
             {"ratio", 0.5},
             {"flag", true},
             {"big", 5000000000LL},
             {"nested", {{"a", {1, "b"}}}},
             {"nothing", nullptr},
             {"negative", -3}};
  AmqpTable table(in);
  EXPECT_EQ(TableToJson(table.get()), in);
}

TEST(AmqpTable, IntegersAreSigned32BitLikePyAmqp) {
  // RabbitMQ compares x-max-priority by type: kombu sends 'I'.
  AmqpTable table(json{{"x-max-priority", 10}, {"u", json(10u)}});
  ASSERT_EQ(table.get().num_entries, 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(table.get().entries[i].value.kind, AMQP_FIELD_KIND_I32);
    EXPECT_EQ(table.get().entries[i].value.value.i32, 10);
  }
}

TEST(AmqpTable, NonObjectIsEmpty) {
  AmqpTable table(json::array({1, 2}));
  EXPECT_EQ(table.get().num_entries, 0);
  EXPECT_EQ(TableToJson(table.get()), json::object());
}

}  // namespace
}  // namespace cw
