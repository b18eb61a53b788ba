// AMQP field tables as JSON: message headers and queue arguments travel as
// JSON everywhere else in the worker.
#pragma once

#include <amqp.h>

#include <nlohmann/json.hpp>

namespace cw {

nlohmann::json TableToJson(const amqp_table_t& table);

// An amqp_table_t built from a JSON object (anything else gives an empty
// table). Integers become signed 32-bit 'I' when they fit, as py-amqp sends
// them: RabbitMQ compares queue arguments by type, so x-max-priority must be
// the same type kombu declares it with.
class AmqpTable {
 public:
  explicit AmqpTable(const nlohmann::json& object);
  ~AmqpTable();
  AmqpTable(const AmqpTable&) = delete;
  AmqpTable& operator=(const AmqpTable&) = delete;

  const amqp_table_t& get() const { return table_; }

 private:
  amqp_pool_t pool_;
  amqp_table_t table_;
};

}  // namespace cw
