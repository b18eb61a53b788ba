#include "storage/hash.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <system_error>
#include <vector>

#include "storage/file_util.h"

namespace cw {
namespace {

constexpr std::size_t kChunk = 64 * 1024;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string ToHex(const unsigned char* data, unsigned int size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xf]);
  }
  return out;
}

Result<std::string> DigestFileHex(const std::filesystem::path& path, const EVP_MD* md,
                                  const std::function<bool()>& cancelled = {}) {
  CW_ASSIGN_OR_RETURN(int fd, OpenForReading(path));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    return Internal("OpenSSL cannot start a digest");
  }
  std::vector<unsigned char> buffer(kChunk);
  while (true) {
    if (cancelled && cancelled()) return Cancelled("stopped while hashing " + path.filename().string());
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read " + path.string() + ": " +
                     std::error_code(errno, std::generic_category()).message());
    }
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n)) != 1) {
      return Internal("OpenSSL digest update failed");
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1) return Internal("OpenSSL digest failed");
  return ToHex(digest, size);
}

}  // namespace

Result<std::string> Md5FileHex(const std::filesystem::path& path,
                               const std::function<bool()>& cancelled) {
  return DigestFileHex(path, EVP_md5(), cancelled);
}

Result<std::string> Sha256FileHex(const std::filesystem::path& path) {
  return DigestFileHex(path, EVP_sha256());
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // One-shot EVP_Digest cannot fail for SHA-256 short of memory exhaustion.
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return ToHex(digest, size);
}

}  // namespace cw
