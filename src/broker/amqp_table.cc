#include "broker/amqp_table.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace cw {
namespace {

using json = nlohmann::json;

std::string BytesToString(amqp_bytes_t bytes) {
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

json FieldToJson(const amqp_field_value_t& field) {
  switch (field.kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
      return field.value.boolean != 0;
    case AMQP_FIELD_KIND_I8:
      return field.value.i8;
    case AMQP_FIELD_KIND_U8:
      return field.value.u8;
    case AMQP_FIELD_KIND_I16:
      return field.value.i16;
    case AMQP_FIELD_KIND_U16:
      return field.value.u16;
    case AMQP_FIELD_KIND_I32:
      return field.value.i32;
    case AMQP_FIELD_KIND_U32:
      return field.value.u32;
    case AMQP_FIELD_KIND_I64:
      return field.value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
      return field.value.u64;
    case AMQP_FIELD_KIND_F32:
      return field.value.f32;
    case AMQP_FIELD_KIND_F64:
      return field.value.f64;
    case AMQP_FIELD_KIND_DECIMAL:
      return field.value.decimal.value / std::pow(10.0, field.value.decimal.decimals);
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return BytesToString(field.value.bytes);
    case AMQP_FIELD_KIND_ARRAY: {
      json out = json::array();
      for (int i = 0; i < field.value.array.num_entries; ++i) {
        out.push_back(FieldToJson(field.value.array.entries[i]));
      }
      return out;
    }
    case AMQP_FIELD_KIND_TABLE:
      return TableToJson(field.value.table);
    default:  // AMQP_FIELD_KIND_VOID
      return nullptr;
  }
}

amqp_bytes_t PoolString(amqp_pool_t* pool, const std::string& s) {
  amqp_bytes_t bytes;
  amqp_pool_alloc_bytes(pool, s.size(), &bytes);
  if (bytes.bytes != nullptr && !s.empty()) std::memcpy(bytes.bytes, s.data(), s.size());
  return bytes;
}

amqp_table_t BuildTable(amqp_pool_t* pool, const json& object);

amqp_field_value_t BuildField(amqp_pool_t* pool, const json& value) {
  amqp_field_value_t field{};
  constexpr auto kI32Max = std::numeric_limits<std::int32_t>::max();
  constexpr auto kI32Min = std::numeric_limits<std::int32_t>::min();
  switch (value.type()) {
    case json::value_t::boolean:
      field.kind = AMQP_FIELD_KIND_BOOLEAN;
      field.value.boolean = value.get<bool>() ? 1 : 0;
      break;
    case json::value_t::number_integer: {
      auto v = value.get<std::int64_t>();
      if (v >= kI32Min && v <= kI32Max) {
        field.kind = AMQP_FIELD_KIND_I32;
        field.value.i32 = static_cast<std::int32_t>(v);
      } else {
        field.kind = AMQP_FIELD_KIND_I64;
        field.value.i64 = v;
      }
      break;
    }
    case json::value_t::number_unsigned: {
      auto v = value.get<std::uint64_t>();
      if (v <= static_cast<std::uint64_t>(kI32Max)) {
        field.kind = AMQP_FIELD_KIND_I32;
        field.value.i32 = static_cast<std::int32_t>(v);
      } else if (v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        field.kind = AMQP_FIELD_KIND_I64;
        field.value.i64 = static_cast<std::int64_t>(v);
      } else {
        field.kind = AMQP_FIELD_KIND_U64;
        field.value.u64 = v;
      }
      break;
    }
    case json::value_t::number_float:
      field.kind = AMQP_FIELD_KIND_F64;
      field.value.f64 = value.get<double>();
      break;
    case json::value_t::string:
      field.kind = AMQP_FIELD_KIND_UTF8;
      field.value.bytes = PoolString(pool, value.get_ref<const std::string&>());
      break;
    case json::value_t::array: {
      field.kind = AMQP_FIELD_KIND_ARRAY;
      auto n = static_cast<int>(value.size());
      auto* entries = static_cast<amqp_field_value_t*>(
          amqp_pool_alloc(pool, sizeof(amqp_field_value_t) * static_cast<size_t>(n)));
      for (int i = 0; i < n; ++i) entries[i] = BuildField(pool, value[static_cast<size_t>(i)]);
      field.value.array.num_entries = n;
      field.value.array.entries = entries;
      break;
    }
    case json::value_t::object:
      field.kind = AMQP_FIELD_KIND_TABLE;
      field.value.table = BuildTable(pool, value);
      break;
    default:  // null, binary, discarded
      field.kind = AMQP_FIELD_KIND_VOID;
      break;
  }
  return field;
}

amqp_table_t BuildTable(amqp_pool_t* pool, const json& object) {
  amqp_table_t table{0, nullptr};
  if (!object.is_object() || object.empty()) return table;
  auto n = static_cast<int>(object.size());
  auto* entries = static_cast<amqp_table_entry_t*>(
      amqp_pool_alloc(pool, sizeof(amqp_table_entry_t) * static_cast<size_t>(n)));
  int i = 0;
  for (const auto& [key, value] : object.items()) {
    entries[i].key = PoolString(pool, key);
    entries[i].value = BuildField(pool, value);
    ++i;
  }
  table.num_entries = n;
  table.entries = entries;
  return table;
}

}  // namespace

json TableToJson(const amqp_table_t& table) {
  json out = json::object();
  for (int i = 0; i < table.num_entries; ++i) {
    out[BytesToString(table.entries[i].key)] = FieldToJson(table.entries[i].value);
  }
  return out;
}

AmqpTable::AmqpTable(const nlohmann::json& object) {
  init_amqp_pool(&pool_, 4096);
  table_ = BuildTable(&pool_, object);
}

AmqpTable::~AmqpTable() { empty_amqp_pool(&pool_); }

}  // namespace cw
