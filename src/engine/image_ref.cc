#include "engine/image_ref.h"

#include <algorithm>
#include <cctype>

namespace cw {
namespace {

bool ValidTag(std::string_view tag) {
  // The engine's rule: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
  if (tag.empty() || tag.size() > 128) return false;
  if (!(std::isalnum(static_cast<unsigned char>(tag[0])) || tag[0] == '_')) return false;
  return std::all_of(tag.begin(), tag.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

}  // namespace

std::string ImageRef::FromImage() const {
  return digest.empty() ? repository : repository + "@" + digest;
}

std::string ImageRef::ToString() const {
  return digest.empty() ? repository + ":" + tag : repository + "@" + digest;
}

bool ImageRef::NamesRegistry() const {
  const std::size_t slash = repository.find('/');
  if (slash == std::string::npos) return false;
  const std::string first = repository.substr(0, slash);
  return first.find_first_of(".:") != std::string::npos || first == "localhost";
}

Result<ImageRef> ParseImageRef(std::string_view ref) {
  auto bad = [&](const std::string& why) {
    return InvalidInput("image reference \"" + std::string(ref) + "\" is not valid: " + why);
  };
  if (ref.empty()) return bad("it is empty");
  if (std::any_of(ref.begin(), ref.end(),
                  [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
    return bad("it contains white space");
  }

  ImageRef out;
  std::string_view name = ref;
  if (size_t at = name.find('@'); at != std::string_view::npos) {
    out.digest = std::string(name.substr(at + 1));
    name = name.substr(0, at);
    if (out.digest.find(':') == std::string::npos) return bad("the digest has no algorithm");
  }
  // A colon before the last slash belongs to the registry host ("host:5000/x").
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = name.substr(colon + 1);
    if (!ValidTag(tag)) return bad("the tag \"" + std::string(tag) + "\" is not valid");
    // With a digest too, the engine pulls by digest and ignores the tag.
    if (out.digest.empty()) out.tag = std::string(tag);
    name = name.substr(0, colon);
  }
  if (name.empty() || name.front() == '/' || name.back() == '/') {
    return bad("the repository name is missing");
  }
  // The only colon left may be a registry port ("host:5000/x"), all digits.
  // An IPv6 host ("[::1]:5000/x") is left for the engine to judge.
  std::string_view host = name.substr(0, name.find('/'));
  if (size_t c = host.find(':'); c != std::string_view::npos && host.front() != '[') {
    std::string_view port = host.substr(c + 1);
    if (name.find('/') == std::string_view::npos || port.empty() ||
        !std::all_of(port.begin(), port.end(),
                     [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
      return bad("\"" + std::string(host) + "\" is not a registry host:port");
    }
  }
  out.repository = std::string(name);
  if (out.tag.empty() && out.digest.empty()) out.tag = "latest";
  return out;
}

}  // namespace cw
