#include "broker/broker_url.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace cw {
namespace {

constexpr int kAmqpPort = 5672;
constexpr int kAmqpsPort = 5671;

std::optional<int> HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

// As Python's urllib.parse.unquote (which kombu uses): '+' stays '+'.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hi = HexDigit(s[i + 1]);
    auto lo = HexDigit(s[i + 2]);
    if (!hi || !lo) return std::nullopt;
    out.push_back(static_cast<char>(*hi * 16 + *lo));
    i += 2;
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  size_t sep = url.find("://");
  size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  // The user-info ends at the URL's last '@', not at the first '/', '?' or
  // '#': a password may hold any of them raw, and such a URL is exactly the
  // one that fails to parse and gets logged. A vhost holding '@' is rare, and
  // hiding a host or port then is the safe mistake.
  size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  size_t colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  std::string out(url.substr(0, colon + 1));
  out += "***";
  out += url.substr(at);
  return out;
}

std::string BrokerAddress::Redacted() const {
  std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return std::string(tls ? "amqps" : "amqp") + "://" + user + ":***@" + shown_host + ":" +
         std::to_string(port) + "/" + vhost;
}

Result<BrokerAddress> ParseBrokerUrl(const std::string& url, bool use_ssl) {
  auto malformed = [&](const std::string& why) {
    return InvalidInput("the broker URL " + RedactUrl(url) + " is malformed: " + why);
  };
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    return malformed("it has no scheme (expected amqp://, pyamqp:// or amqps://)");
  }
  BrokerAddress address;
  std::string scheme = Lower(std::string_view(url).substr(0, sep));
  if (scheme == "amqps") {
    address.tls = true;
  } else if (scheme != "amqp" && scheme != "pyamqp" && scheme != "librabbitmq") {
    return malformed("unsupported scheme \"" + scheme +
                     "\" (expected amqp://, pyamqp:// or amqps://)");
  }
  if (use_ssl) address.tls = true;

  std::string_view rest = std::string_view(url).substr(sep + 3);
  // kombu reads transport options from the query; none of them matter here.
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

  std::string_view host_port = authority;
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view user_info = authority.substr(0, at);
    host_port = authority.substr(at + 1);
    size_t colon = user_info.find(':');
    auto user = PercentDecode(user_info.substr(0, colon));
    if (!user) return malformed("bad %-escape in the user name");
    // kombu falls back to guest for an empty user or password; so do we.
    if (!user->empty()) address.user = *user;
    if (colon != std::string_view::npos) {
      auto password = PercentDecode(user_info.substr(colon + 1));
      if (!password) return malformed("bad %-escape in the password");
      if (!password->empty()) address.password = *password;
    }
  }

  std::string_view host = host_port;
  std::string_view port;
  bool has_port = false;
  if (!host_port.empty() && host_port.front() == '[') {
    size_t close = host_port.find(']');
    if (close == std::string_view::npos) return malformed("unclosed [ in the IPv6 host");
    host = host_port.substr(1, close - 1);
    std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return malformed("unexpected text after the IPv6 host");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = host_port.find(':');
    if (colon != std::string_view::npos) {
      host = host_port.substr(0, colon);
      port = host_port.substr(colon + 1);
      has_port = true;
      if (port.find(':') != std::string_view::npos) {
        return malformed("more than one ':' in the host (put an IPv6 address in [])");
      }
    }
  }
  auto decoded_host = PercentDecode(host);
  if (!decoded_host) return malformed("bad %-escape in the host");
  address.host = decoded_host->empty() ? "localhost" : *decoded_host;
  for (unsigned char c : address.host) {
    if (std::isspace(c) || std::iscntrl(c)) return malformed("the host has a space in it");
  }

  address.port = address.tls ? kAmqpsPort : kAmqpPort;
  if (has_port && !port.empty()) {
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      return malformed("the port \"" + std::string(port) + "\" is not a number from 1 to 65535");
    }
    address.port = value;
  }

  auto vhost = PercentDecode(path);
  if (!vhost) return malformed("bad %-escape in the vhost");
  address.vhost = vhost->empty() ? "/" : *vhost;
  return address;
}

}  // namespace cw
