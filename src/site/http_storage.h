// Storage at HTTP(S) URLs: the signed URLs (S3/MinIO, GCS, Azure SAS) that
// Codabench puts in run_args. And the router the queue worker uses, which also
// serves file:// URLs and plain paths from the local disk.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "site/http_client.h"
#include "site/retry.h"
#include "storage/storage.h"

namespace cw {

class HttpStorage : public Storage {
 public:
  explicit HttpStorage(const HttpClient& client, RetryPolicy policy = TransferRetryPolicy());

  // GET, streamed to `dest` through "<dest>.part"; retried per the policy
  // (a retry starts the count of `progress` again).
  Status Fetch(const std::string& url, const std::filesystem::path& dest,
               const TransferProgressFn& progress = {}) override;

  // PUT of the file, streamed, with its Content-Type and the headers Azure
  // needs for a blob (x-ms-blob-type: BlockBlob, x-ms-version: 2018-03-28;
  // S3 and GCS ignore them).
  Status Put(const std::string& url, const std::filesystem::path& src,
             const std::string& content_type) override;

 private:
  const HttpClient& client_;
  RetryPolicy policy_;
};

// http:// and https:// go to `remote`; file:// URLs and absolute paths to
// `local`; anything else is InvalidInput.
class RoutingStorage : public Storage {
 public:
  RoutingStorage(std::unique_ptr<Storage> local, std::unique_ptr<Storage> remote);

  Status Fetch(const std::string& url, const std::filesystem::path& dest,
               const TransferProgressFn& progress = {}) override;
  Status Put(const std::string& url, const std::filesystem::path& src,
             const std::string& content_type) override;

 private:
  Storage* Route(const std::string& url) const;

  std::unique_ptr<Storage> local_;
  std::unique_ptr<Storage> remote_;
};

// A RoutingStorage of a LocalStorage and an HttpStorage over `client`.
std::unique_ptr<Storage> MakeWorkerStorage(const HttpClient& client,
                                           RetryPolicy policy = TransferRetryPolicy());

}  // namespace cw
