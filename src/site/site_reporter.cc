#include "site/site_reporter.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "site/url.h"

namespace cw {

namespace {

constexpr auto kDump = nlohmann::json::error_handler_t::replace;

std::string WithoutTrailingSlashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

Result<std::string> LiveLogUrl(const std::string& submissions_api_url, long long user_pk,
                               long long submission_id, const std::string& secret,
                               const std::string& kind) {
  CW_ASSIGN_OR_RETURN(ParsedUrl api, ParseUrl(submissions_api_url));
  if (api.scheme != "http" && api.scheme != "https") {
    return InvalidInput("the submissions API URL '" + RedactUrl(submissions_api_url) +
                        "' is not http:// or https://");
  }
  return std::string(api.scheme == "https" ? "wss" : "ws") + "://" + api.HostHeader() +
         "/submission_input/" + std::to_string(user_pk) + "/" + std::to_string(submission_id) + "/" +
         secret + "/?kind=" + kind;
}

SiteReporter::SiteReporter(std::string submissions_api_url, long long submission_id,
                           long long user_pk, std::string secret, bool is_scoring,
                           const HttpClient& http, SiteReporterOptions options)
    : api_url_(WithoutTrailingSlashes(std::move(submissions_api_url))),
      submission_id_(submission_id),
      user_pk_(user_pk),
      secret_(std::move(secret)),
      is_scoring_(is_scoring),
      http_(http),
      options_(std::move(options)) {}

SiteReporter::~SiteReporter() { Finish(); }

Status SiteReporter::Scrub(Status status) const {
  // Short secrets would mask ordinary words; Codabench's are UUIDs.
  if (status.ok() || secret_.size() < 8) return status;
  std::string message = status.message();
  for (std::size_t at = message.find(secret_); at != std::string::npos; at = message.find(secret_, at)) {
    message.replace(at, secret_.size(), "***");
  }
  return Status(status.code(), message);
}

Status SiteReporter::Patch(std::vector<std::pair<std::string, std::string>> fields,
                           const std::string& action) {
  fields.emplace_back("secret", secret_);
  HttpRequest req;
  req.method = "PATCH";
  req.url = api_url_ + "/submissions/" + std::to_string(submission_id_) + "/";
  req.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
  req.body = FormEncode(fields);
  req.server = "the site";
  req.action = action;
  req.forbidden_hint = "the site did not accept the submission's secret";
  req.error_body = ErrorBody::kText;
  auto sent = http_.Send(req, options_.retry);
  if (!sent.ok()) return Scrub(sent.status());
  spdlog::debug("submission {} ({}): {} sent", submission_id_, is_scoring_ ? "scoring" : "prediction",
                action);
  return Status::Ok();
}

Status SiteReporter::UpdateStatus(JobStatus status, const std::string& details) {
  std::vector<std::pair<std::string, std::string>> fields = {{"status", JobStatusName(status)}};
  if (!details.empty()) fields.emplace_back("status_details", details);
  return Patch(std::move(fields), std::string("status update (") + JobStatusName(status) + ")");
}

Status SiteReporter::ReportMd5(const std::string& md5_hex) {
  return Patch({{"md5", md5_hex}}, "checksum");
}

Status SiteReporter::ReportError(ErrorType type, const std::string& message, bool is_scoring) {
  return Patch({{"type", ErrorTypeName(type)},
                {"error_message", message},
                {"is_scoring", is_scoring ? "True" : "False"}},
               "error report");
}

Status SiteReporter::ReportScores(const nlohmann::json& scores) {
  HttpRequest req;
  req.method = "POST";
  req.url = api_url_ + "/upload_submission_scores/" + std::to_string(submission_id_) + "/";
  req.headers = {"Content-Type: application/json", "Accept: application/json"};
  req.body = nlohmann::json{{"secret", secret_}, {"scores", scores}}.dump(-1, ' ', false, kDump);
  req.server = "the site";
  req.action = "scores";
  req.forbidden_hint = "the site did not accept the submission's secret";
  req.error_body = ErrorBody::kText;
  auto sent = http_.Send(req, options_.retry);
  if (!sent.ok()) return Scrub(sent.status());
  spdlog::debug("submission {}: scores sent", submission_id_);
  return Status::Ok();
}

LiveSocket* SiteReporter::Socket(const std::string& query_kind, const std::string& message_kind) {
  auto it = sockets_.find(query_kind);
  if (it != sockets_.end()) return it->second.get();
  auto url = LiveLogUrl(api_url_, user_pk_, submission_id_, secret_, query_kind);
  if (!url.ok()) {
    if (!live_off_logged_) spdlog::warn("no live output for submission {}: {}", submission_id_, url.status().message());
    live_off_logged_ = true;
    sockets_[query_kind] = nullptr;
    return nullptr;
  }
  auto socket = std::make_unique<LiveSocket>(*url, message_kind, options_.socket);
  LiveSocket* raw = socket.get();
  sockets_[query_kind] = std::move(socket);
  return raw;
}

void SiteReporter::Log(ProgramKind kind, LogStream stream, std::string_view chunk) {
  if (!options_.live_logs) return;
  MutexLock lock(mu_);
  if (finished_) return;
  std::string text = decoders_[{kind, stream}].Feed(chunk);
  if (text.empty()) return;
  const char* name = ProgramKindName(kind);
  if (LiveSocket* socket = Socket(name, name)) socket->Send(std::move(text));
}

void SiteReporter::LiveError(const std::string& message) {
  if (!options_.live_logs) return;
  MutexLock lock(mu_);
  if (finished_) return;
  if (LiveSocket* socket = Socket("error_logs", "stderr")) {
    socket->SendMessage(nlohmann::json{{"kind", "stderr"}, {"message", message}}.dump(-1, ' ', false, kDump));
  }
}

void SiteReporter::DetailedResultsUpdated() {
  if (!options_.live_logs) return;
  MutexLock lock(mu_);
  if (finished_) return;
  if (LiveSocket* socket = Socket("detailed_results", "detailed_result_update")) {
    socket->SendMessage(R"({"kind": "detailed_result_update"})");
  }
}

void SiteReporter::Finish() {
  std::map<std::string, std::unique_ptr<LiveSocket>> sockets;
  {
    MutexLock lock(mu_);
    if (finished_) return;
    finished_ = true;
    for (auto& [key, decoder] : decoders_) {
      std::string rest = decoder.Finish();
      auto it = sockets_.find(ProgramKindName(key.first));
      if (!rest.empty() && it != sockets_.end() && it->second) it->second->Send(std::move(rest));
    }
    sockets.swap(sockets_);
  }
  // One grace for all: each socket has been sending all along, so the
  // later ones mostly have less left to flush.
  const auto deadline = std::chrono::steady_clock::now() + options_.close_grace;
  for (auto& [kind, socket] : sockets) {
    if (!socket) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    socket->Close(std::max(left, std::chrono::milliseconds(0)));
  }
}

}  // namespace cw
