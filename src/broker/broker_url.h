// Where the broker is: BROKER_URL (and BROKER_USE_SSL) as the Python worker
// reads them, parsed once so nothing else handles the password.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cw {

struct BrokerAddress {
  bool tls = false;
  std::string host;  // without the [] of an IPv6 address
  int port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";

  // "amqp://user:***@host:port/vhost" (amqps:// with TLS): safe for logs.
  std::string Redacted() const;
};

// pyamqp://, amqp:// and amqps:// (TLS; `use_ssl` forces TLS too, as
// BROKER_USE_SSL=True does). The user, password and vhost are URL-decoded; an
// empty path or "/" is vhost "/". A malformed URL is InvalidInput, and the
// message shows the URL with its password hidden.
Result<BrokerAddress> ParseBrokerUrl(const std::string& url, bool use_ssl);

// `url` with the password of its user-info replaced by ***, even when the rest
// of it does not parse: for error messages about URLs we could not read.
std::string RedactUrl(std::string_view url);

}  // namespace cw
