// When a call to the site or to storage is worth trying again, and how long
// to wait first. Outside services blip (a restart, a load balancer's 502, a
// rate limit); a job should ride those out, but a refusal (an expired signed
// URL, a wrong secret) will not change by waiting.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace cw {

struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds first_delay{1000};
  std::chrono::milliseconds max_delay{30000};
  // No new attempt starts when the wait before it would end past this much
  // time since the first one began.
  std::chrono::seconds max_total{300};
};

// For the site's API calls: up to 8 attempts over about two minutes.
RetryPolicy SiteRetryPolicy();
// For bundle downloads and output uploads, which may be large and slow.
RetryPolicy TransferRetryPolicy();

// The wait after failed attempt number `attempt` (1-based): first_delay
// doubled per attempt, capped at max_delay, then jittered to a point in
// [half, whole] by `unit_random` in [0, 1) so that many workers that failed
// together do not come back together.
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int attempt, double unit_random);

// 408, 429 and 5xx: the server may answer differently later.
bool IsTransientHttpStatus(long status);

// The Status code for a final non-2xx answer: 404 NotFound, 401/403
// PermissionDenied, transient ones Unavailable, any other InvalidInput.
Code CodeForHttpStatus(long status);

// "403 Forbidden"; the number alone for codes without a common phrase.
std::string HttpStatusText(long status);

}  // namespace cw
