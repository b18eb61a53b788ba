// URLs as the site and storage hand them to us: split for connecting, encoded
// for forms, and redacted before they reach a log line or a Status message.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cw {

struct ParsedUrl {
  std::string scheme;  // lower-case: "https"
  std::string host;    // without the brackets of an IPv6 literal
  std::string port;    // as written; empty when the URL gives none
  std::string target;  // path and query, "/" at least: "/a/b?x=1"

  // The port to dial: the one written, else the scheme's default.
  std::string PortOrDefault() const;
  // What an HTTP Host header carries: host, plus ":port" when the URL gives one.
  std::string HostHeader() const;
};

// Parses scheme://[user[:pass]@]host[:port][/path][?query][#fragment].
// The fragment is dropped; user info is accepted and dropped (nothing we call
// authenticates that way). InvalidInput, with a redacted URL, when malformed.
Result<ParsedUrl> ParseUrl(const std::string& url);

// The URL with what must never be logged taken out: the query string (signed
// URLs carry their signature there), the fragment, a password in the user
// info, and the secret in a Codabench /submission_input/<user>/<id>/<secret>/
// path (shown as "***").
std::string RedactUrl(const std::string& url);

// application/x-www-form-urlencoded, as Python's urlencode writes it
// (space as '+', everything but letters, digits and "-._~" percent-encoded).
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace cw
