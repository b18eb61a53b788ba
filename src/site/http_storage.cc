#include "site/http_storage.h"

#include <algorithm>
#include <cctype>

#include "site/url.h"
#include "storage/local_storage.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

std::string LowerPrefix(const std::string& url, std::size_t n) {
  std::string head = url.substr(0, n);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return head;
}

bool IsHttpUrl(const std::string& url) {
  return LowerPrefix(url, 7) == "http://" || LowerPrefix(url, 8) == "https://";
}

bool IsLocalUrl(const std::string& url) {
  return (!url.empty() && url[0] == '/') || LowerPrefix(url, 5) == "file:";
}

Status NotHttp(const std::string& url) {
  return InvalidInput("HttpStorage handles http:// and https:// URLs only, not '" + RedactUrl(url) + "'");
}

// A signed URL carries its signature and expiry in the query.
std::string ForbiddenHint(const std::string& url) {
  return url.find('?') != std::string::npos ? "the signed URL may have expired" : "";
}

// What every storage call has in common: who answers, and how to read a refusal.
HttpRequest StorageRequest(const std::string& method, const std::string& url,
                           const std::string& action) {
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.server = "the storage";
  req.action = action;
  req.forbidden_hint = ForbiddenHint(url);
  req.error_body = ErrorBody::kXmlCode;
  return req;
}

}  // namespace

HttpStorage::HttpStorage(const HttpClient& client, RetryPolicy policy)
    : client_(client), policy_(policy) {}

Status HttpStorage::Fetch(const std::string& url, const fs::path& dest,
                          const TransferProgressFn& progress) {
  if (!IsHttpUrl(url)) return NotHttp(url);
  HttpRequest req = StorageRequest("GET", url, "download");
  req.download_to = dest;
  // Every bundle is a zip, and a zip is never empty.
  req.refuse_empty_download = true;
  req.on_download_progress = progress;
  auto got = client_.Send(req, policy_);
  return got.ok() ? Status::Ok() : got.status();
}

Status HttpStorage::Put(const std::string& url, const fs::path& src, const std::string& content_type) {
  if (!IsHttpUrl(url)) return NotHttp(url);
  HttpRequest req = StorageRequest("PUT", url, "upload");
  req.upload_from = src;
  req.headers = {"Content-Type: " + (content_type.empty() ? "application/octet-stream" : content_type),
                 "x-ms-blob-type: BlockBlob", "x-ms-version: 2018-03-28"};
  auto got = client_.Send(req, policy_);
  return got.ok() ? Status::Ok() : got.status();
}

RoutingStorage::RoutingStorage(std::unique_ptr<Storage> local, std::unique_ptr<Storage> remote)
    : local_(std::move(local)), remote_(std::move(remote)) {}

Storage* RoutingStorage::Route(const std::string& url) const {
  if (IsHttpUrl(url)) return remote_.get();
  if (IsLocalUrl(url)) return local_.get();
  return nullptr;
}

Status RoutingStorage::Fetch(const std::string& url, const fs::path& dest,
                             const TransferProgressFn& progress) {
  Storage* s = Route(url);
  if (!s) return InvalidInput("cannot fetch '" + RedactUrl(url) + "': not an http(s) or file URL");
  return s->Fetch(url, dest, progress);
}

Status RoutingStorage::Put(const std::string& url, const fs::path& src, const std::string& content_type) {
  Storage* s = Route(url);
  if (!s) return InvalidInput("cannot store to '" + RedactUrl(url) + "': not an http(s) or file URL");
  return s->Put(url, src, content_type);
}

std::unique_ptr<Storage> MakeWorkerStorage(const HttpClient& client, RetryPolicy policy) {
  return std::make_unique<RoutingStorage>(std::make_unique<LocalStorage>(),
                                          std::make_unique<HttpStorage>(client, policy));
}

}  // namespace cw
