#include "storage/local_storage.h"

#include <algorithm>
#include <cctype>
#include <system_error>

#include "storage/file_util.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(const std::string& text, const std::string& url) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return InvalidInput("bad percent-encoding in URL '" + url + "'");
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return InvalidInput("URL '" + url + "' encodes a NUL byte");
    out.push_back(c);
    i += 2;
  }
  return out;
}

// "https" for "https://x", empty when the text does not start with a scheme.
std::string SchemeOf(const std::string& url) {
  std::size_t colon = url.find(':');
  if (colon == std::string::npos || colon == 0) return "";
  if (!std::isalpha(static_cast<unsigned char>(url[0]))) return "";
  for (std::size_t i = 0; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(url[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return "";
  }
  std::string scheme = url.substr(0, colon);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return scheme;
}

}  // namespace

Result<fs::path> LocalPathFromUrl(const std::string& url, const std::string& verb) {
  if (!url.empty() && url[0] == '/') return fs::path(url);
  std::string scheme = SchemeOf(url);
  if (scheme.empty()) {
    return InvalidInput("LocalStorage needs an absolute path or a file:// URL, not '" + url + "'");
  }
  if (scheme != "file") return InvalidInput("LocalStorage cannot " + verb + " " + scheme + " URLs");

  std::string rest = url.substr(scheme.size() + 1);
  rest = rest.substr(0, rest.find_first_of("?#"));
  if (rest.rfind("//", 0) == 0) {
    std::size_t slash = rest.find('/', 2);
    std::string host = rest.substr(2, slash == std::string::npos ? std::string::npos : slash - 2);
    if (!host.empty() && host != "localhost") {
      return InvalidInput("LocalStorage cannot " + verb + " files on host '" + host + "' (" + url + ")");
    }
    rest = slash == std::string::npos ? "" : rest.substr(slash);
  }
  if (rest.empty() || rest[0] != '/') {
    return InvalidInput("file URL '" + url + "' does not name an absolute path");
  }
  CW_ASSIGN_OR_RETURN(std::string path, PercentDecode(rest, url));
  return fs::path(path);
}

Status LocalStorage::Fetch(const std::string& url, const fs::path& dest,
                           const TransferProgressFn& progress) {
  CW_ASSIGN_OR_RETURN(fs::path src, LocalPathFromUrl(url, "fetch"));
  std::error_code ec;
  if (!fs::exists(src, ec)) return NotFound("no file at " + src.string());
  // Copying a file onto itself would truncate it first.
  if (fs::equivalent(src, dest, ec)) return Status::Ok();
  return CopyFileAtomically(src, dest, progress);
}

Status LocalStorage::Put(const std::string& url, const fs::path& src, const std::string& /*content_type*/) {
  CW_ASSIGN_OR_RETURN(fs::path target, LocalPathFromUrl(url, "store to"));
  std::error_code ec;
  if (!fs::exists(src, ec)) return NotFound("no file at " + src.string());
  if (fs::equivalent(src, target, ec)) return Status::Ok();
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) return IoError("cannot create folder " + target.parent_path().string() + ": " + ec.message());
  }
  return CopyFileAtomically(src, target);
}

}  // namespace cw
