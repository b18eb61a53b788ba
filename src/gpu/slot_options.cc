#include "gpu/slot_options.h"

#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>

#include "gpu/text.h"

namespace cw {
namespace {

using gpu_text::Lower;
using gpu_text::Split;
using gpu_text::Trim;

Status BadSize(std::string_view text, const std::string& why) {
  return InvalidInput("\"" + std::string(text) + "\" is not a size: " + why +
                      " (write e.g. 1024, 512m, 16g, 1.5G or 2GiB)");
}

std::size_t DigitsAt(std::string_view s, std::size_t from) {
  std::size_t end = from;
  while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
  return end - from;
}

// "", "b", "k", "kb", "ki", "kib", ... -> the power of 1024, or -1.
int UnitPower(std::string_view unit) {
  std::string u = Lower(unit);
  if (u.empty() || u == "b") return 0;
  static constexpr std::string_view kPrefixes = "kmgtp";
  std::size_t power = kPrefixes.find(u[0]);
  if (power == std::string_view::npos) return -1;
  std::string_view rest = std::string_view(u).substr(1);
  if (rest.empty() || rest == "b" || rest == "i" || rest == "ib") {
    return static_cast<int>(power) + 1;
  }
  return -1;
}

bool HasDotDot(std::string_view path) {
  for (std::string_view part : Split(path, '/')) {
    if (part == "..") return true;
  }
  return false;
}

Result<std::string> MountPath(std::string_view spec, std::string_view path, const char* which) {
  auto bad = [&](const std::string& why) {
    return InvalidInput("mount \"" + std::string(spec) + "\": the " + which + " path " + why);
  };
  if (path.empty()) return bad("is missing (write /host/path:/container/path[:ro])");
  if (path.front() != '/') return bad("\"" + std::string(path) + "\" must be absolute");
  if (HasDotDot(path)) return bad("\"" + std::string(path) + "\" must not contain \"..\"");
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

}  // namespace

Result<long long> ParseBytes(std::string_view input) {
  std::string_view text = Trim(input);
  if (text.empty()) return BadSize(input, "it is empty");
  std::size_t int_digits = DigitsAt(text, 0);
  if (int_digits == 0) return BadSize(input, "it must start with a number of 0 or more");
  std::size_t pos = int_digits;
  std::string_view fraction;
  if (pos < text.size() && text[pos] == '.') {
    std::size_t frac_digits = DigitsAt(text, pos + 1);
    if (frac_digits == 0) return BadSize(input, "a digit must follow the '.'");
    fraction = text.substr(pos + 1, frac_digits);
    pos += 1 + frac_digits;
  }
  int power = UnitPower(Trim(text.substr(pos)));
  if (power < 0) {
    return BadSize(input, "unknown unit \"" + std::string(Trim(text.substr(pos))) + "\"");
  }
  const long long unit = 1LL << (10 * power);
  const std::string too_big = "it is larger than " + std::to_string(LLONG_MAX) + " bytes";

  long long whole = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + int_digits, whole);
  if (ec != std::errc() || end != text.data() + int_digits) return BadSize(input, too_big);
  if (whole > LLONG_MAX / unit) return BadSize(input, too_big);
  long long bytes = whole * unit;
  if (!fraction.empty()) {
    // 18 digits are more than a byte's precision at any unit up to "p".
    long double part = 0, scale = 1;
    for (std::size_t i = 0; i < fraction.size() && i < 18; ++i) {
      part = part * 10 + (fraction[i] - '0');
      scale *= 10;
    }
    long double extra = std::floor(part / scale * static_cast<long double>(unit));
    if (extra > static_cast<long double>(LLONG_MAX - bytes)) return BadSize(input, too_big);
    bytes += static_cast<long long>(extra);
  }
  return bytes;
}

Result<Mount> ParseMountSpec(std::string_view spec) {
  std::vector<std::string_view> parts = Split(Trim(spec), ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidInput("mount \"" + std::string(spec) +
                        "\" must be /host/path:/container/path, optionally with :ro or :rw");
  }
  Mount mount;
  CW_ASSIGN_OR_RETURN(mount.host_path, MountPath(spec, parts[0], "host"));
  CW_ASSIGN_OR_RETURN(mount.container_path, MountPath(spec, parts[1], "container"));
  if (mount.container_path == "/") {
    return InvalidInput("mount \"" + std::string(spec) +
                        "\": the container path cannot be \"/\" (it would hide the image)");
  }
  if (parts.size() == 3) {
    if (parts[2] == "ro") {
      mount.read_only = true;
    } else if (parts[2] != "rw") {
      return InvalidInput("mount \"" + std::string(spec) + "\": \"" + std::string(parts[2]) +
                          "\" is not a mode; use ro or rw");
    }
  }
  return mount;
}

}  // namespace cw
