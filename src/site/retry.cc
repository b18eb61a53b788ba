#include "site/retry.h"

#include <algorithm>

#include "common/backoff.h"

namespace cw {

RetryPolicy SiteRetryPolicy() {
  // 1+2+4+8+16+30+30 s of waits: the site gets about two minutes to come back.
  return RetryPolicy{8, std::chrono::milliseconds(1000), std::chrono::milliseconds(30000),
                     std::chrono::seconds(150)};
}

RetryPolicy TransferRetryPolicy() {
  // A transfer's own duration counts in max_total, so it is generous.
  return RetryPolicy{5, std::chrono::milliseconds(2000), std::chrono::milliseconds(60000),
                     std::chrono::seconds(3600)};
}

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int attempt, double unit_random) {
  return JitteredDoubling(policy.first_delay, policy.max_delay, attempt, unit_random);
}

bool IsTransientHttpStatus(long status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

Code CodeForHttpStatus(long status) {
  if (status == 404) return Code::kNotFound;
  if (status == 401 || status == 403) return Code::kPermissionDenied;
  if (IsTransientHttpStatus(status)) return Code::kUnavailable;
  return Code::kInvalidInput;
}

std::string HttpStatusText(long status) {
  const char* phrase = nullptr;
  switch (status) {
    case 300: phrase = "Multiple Choices"; break;
    case 301: phrase = "Moved Permanently"; break;
    case 302: phrase = "Found"; break;
    case 304: phrase = "Not Modified"; break;
    case 307: phrase = "Temporary Redirect"; break;
    case 308: phrase = "Permanent Redirect"; break;
    case 400: phrase = "Bad Request"; break;
    case 401: phrase = "Unauthorized"; break;
    case 403: phrase = "Forbidden"; break;
    case 404: phrase = "Not Found"; break;
    case 405: phrase = "Method Not Allowed"; break;
    case 408: phrase = "Request Timeout"; break;
    case 409: phrase = "Conflict"; break;
    case 410: phrase = "Gone"; break;
    case 411: phrase = "Length Required"; break;
    case 412: phrase = "Precondition Failed"; break;
    case 413: phrase = "Payload Too Large"; break;
    case 415: phrase = "Unsupported Media Type"; break;
    case 422: phrase = "Unprocessable Entity"; break;
    case 429: phrase = "Too Many Requests"; break;
    case 500: phrase = "Internal Server Error"; break;
    case 501: phrase = "Not Implemented"; break;
    case 502: phrase = "Bad Gateway"; break;
    case 503: phrase = "Service Unavailable"; break;
    case 504: phrase = "Gateway Timeout"; break;
    default: break;
  }
  std::string text = std::to_string(status);
  if (phrase) text += std::string(" ") + phrase;
  return text;
}

}  // namespace cw
