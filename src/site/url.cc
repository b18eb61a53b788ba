#include "site/url.h"

#include <algorithm>
#include <cctype>

namespace cw {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ValidScheme(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '+' || c == '-' || c == '.';
  });
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Replaces the third segment after "/submission_input/" (the secret).
std::string MaskSubmissionSecret(std::string path) {
  static constexpr std::string_view kMarker = "/submission_input/";
  std::size_t at = path.find(kMarker);
  if (at == std::string::npos) return path;
  std::size_t pos = at + kMarker.size();
  for (int segment = 0; segment < 2; ++segment) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string::npos) return path;
    pos = slash + 1;
  }
  std::size_t end = path.find('/', pos);
  if (end == std::string::npos) end = path.size();
  if (end > pos) path.replace(pos, end - pos, "***");
  return path;
}

}  // namespace

std::string ParsedUrl::PortOrDefault() const {
  if (!port.empty()) return port;
  return (scheme == "https" || scheme == "wss") ? "443" : "80";
}

std::string ParsedUrl::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port.empty() ? h : h + ":" + port;
}

Result<ParsedUrl> ParseUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return InvalidInput("malformed URL '" + RedactUrl(url) + "': " + why);
  };
  std::size_t sep = url.find("://");
  if (sep == std::string::npos || !ValidScheme(std::string_view(url).substr(0, sep))) {
    return bad("no scheme");
  }
  ParsedUrl out;
  out.scheme = Lower(url.substr(0, sep));
  std::string rest = url.substr(sep + 3);
  std::size_t auth_end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, auth_end);
  std::string tail = auth_end == std::string::npos ? "" : rest.substr(auth_end);
  if (std::size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);

  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) return bad("unclosed '[' in the host");
    out.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("text after the IPv6 host");
      port = after.substr(1);
    }
  } else {
    std::size_t colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string::npos) return bad("more than one ':' in the host");
    }
  }
  if (out.host.empty()) return bad("no host");
  if (!port.empty()) {
    if (!AllDigits(port) || port.size() > 5 || std::stoi(port) == 0 || std::stoi(port) > 65535) {
      return bad("port '" + port + "' is not a number from 1 to 65535");
    }
    out.port = port;
  }
  tail = tail.substr(0, tail.find('#'));
  if (tail.empty() || tail[0] != '/') tail = "/" + tail;
  out.target = tail;
  return out;
}

std::string RedactUrl(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  std::size_t sep = out.find("://");
  std::size_t path_start = 0;
  if (sep != std::string::npos) {
    std::size_t auth_start = sep + 3;
    std::size_t auth_end = out.find('/', auth_start);
    if (auth_end == std::string::npos) auth_end = out.size();
    std::size_t at = out.rfind('@', auth_end - 1);
    if (at != std::string::npos && at >= auth_start) {
      std::size_t colon = out.find(':', auth_start);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
        auth_end = out.find('/', auth_start);
        if (auth_end == std::string::npos) auth_end = out.size();
      }
    }
    path_start = auth_end;
  }
  return out.substr(0, path_start) + MaskSubmissionSecret(out.substr(path_start));
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto encode = [](std::string& out, std::string_view s) {
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else if (c == ' ') {
        out.push_back('+');
      } else {
        out.push_back('%');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
    }
  };
  std::string out;
  for (const auto& [key, value] : fields) {
    if (!out.empty()) out.push_back('&');
    encode(out, key);
    out.push_back('=');
    encode(out, value);
  }
  return out;
}

}  // namespace cw
