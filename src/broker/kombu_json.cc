#include "broker/kombu_json.h"

#include <cctype>
#include <cstdint>

namespace cw {
namespace {

using json = nlohmann::json;

bool IsTyped(const json& j) {
  return j.is_object() && j.size() == 2 && j.contains("__type__") && j.contains("__value__");
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// uuid.UUID(hex=...): "urn:" and "uuid:" dropped, then braces at the ends and
// every dash; 32 hex digits must be left.
std::optional<std::string> UuidDigits(std::string text) {
  for (const std::string prefix : {"urn:", "uuid:"}) {
    for (auto at = text.find(prefix); at != std::string::npos; at = text.find(prefix)) {
      text.erase(at, prefix.size());
    }
  }
  while (!text.empty() && (text.front() == '{' || text.front() == '}')) text.erase(0, 1);
  while (!text.empty() && (text.back() == '{' || text.back() == '}')) text.pop_back();
  std::string digits;
  for (char c : text) {
    if (c == '-') continue;
    if (HexValue(c) < 0) return std::nullopt;
    digits.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (digits.size() != 32) return std::nullopt;
  return digits;
}

// The plain JSON for one typed value, or why there is none.
Result<json> DecodeOne(const std::string& type, const json& value) {
  auto text_only = [&]() -> Result<json> {
    if (!value.is_string()) {
      return InvalidInput("is a kombu '" + type + "' value that is not text");
    }
    return value;
  };
  if (type == "uuid") {
    auto text = KombuUuidText(value);
    if (!text) return InvalidInput("is a kombu 'uuid' value that is not a UUID");
    return json(*text);
  }
  if (type == "datetime" || type == "date" || type == "time" || type == "bytes") {
    return text_only();
  }
  if (type == "decimal") {
    if (!value.is_string()) return InvalidInput("is a kombu 'decimal' value that is not text");
    json number = json::parse(value.get_ref<const std::string&>(), nullptr, false);
    if (number.is_discarded() || !number.is_number()) {
      return InvalidInput("is a kombu 'decimal' value that is not a finite number");
    }
    return number;
  }
  if (type == "base64") {
    if (!value.is_string()) return InvalidInput("is a kombu 'base64' value that is not text");
    auto bytes = DecodeBase64(value.get_ref<const std::string&>());
    if (!bytes) return InvalidInput("is a kombu 'base64' value that is not base64");
    json out(*bytes);
    try {
      (void)out.dump();  // refuses bytes that are not UTF-8
    } catch (const json::exception&) {
      return InvalidInput("is a kombu 'base64' value holding binary data, not text");
    }
    return out;
  }
  return InvalidInput("is a kombu typed value of a type the worker does not know ('" +
                      (type.size() > 40 ? type.substr(0, 40) + "..." : type) + "')");
}

void Decode(json& j, const std::string& where, Status& first) {
  if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) {
      Decode(j[i], where + "[" + std::to_string(i) + "]", first);
    }
    return;
  }
  if (!j.is_object()) return;
  // Innermost first, as json.loads calls object_hook.
  for (auto& [key, child] : j.items()) {
    Decode(child, where + "['" + (key.size() > 40 ? key.substr(0, 40) + "..." : key) + "']",
           first);
  }
  if (!IsTyped(j)) return;
  const json& type = j["__type__"];
  Result<json> plain = type.is_string()
                           ? DecodeOne(type.get<std::string>(), j["__value__"])
                           : Result<json>(InvalidInput("is a kombu typed value whose type is not text"));
  if (plain.ok()) {
    j = std::move(plain).value();
  } else if (first.ok()) {
    first = InvalidInput(where + " " + plain.status().message());
  }
}

}  // namespace

std::optional<std::string> KombuUuidText(const json& value) {
  std::optional<std::string> digits;
  int version = 0;
  if (value.is_string()) {
    digits = UuidDigits(value.get<std::string>());
  } else if (value.is_object()) {
    // uuid.UUID(**value): kombu writes hex, and 5.3.0 also the version.
    for (const auto& [key, v] : value.items()) {
      if (key == "hex" && v.is_string()) {
        digits = UuidDigits(v.get<std::string>());
      } else if (key == "version" && v.is_number_integer()) {
        version = v.get<int>();
        if (version < 1 || version > 8) return std::nullopt;
      } else if (key == "version" && v.is_null()) {
        continue;
      } else {
        return std::nullopt;
      }
    }
  }
  if (!digits) return std::nullopt;
  std::uint8_t bytes[16];
  for (int i = 0; i < 16; ++i) {
    bytes[i] = static_cast<std::uint8_t>(HexValue((*digits)[2 * i]) << 4 |
                                         HexValue((*digits)[2 * i + 1]));
  }
  if (version != 0) {  // as uuid.UUID does: the RFC 4122 variant, then the version
    bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);
    bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | (version << 4));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  unsigned bits = 0;
  int nbits = 0;
  for (char c : in) {
    if (c == '=') break;
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    int v = value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xff));
    }
  }
  return out;
}

Status DecodeKombuTypes(json& value, const std::string& where) {
  Status first = Status::Ok();
  Decode(value, where, first);
  return first;
}

}  // namespace cw
