// The JSON the Docker Engine API sends and expects, kept free of I/O so it can
// be unit-tested: the create-container body, the pull progress stream and the
// engine's error bodies.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "engine/engine.h"

namespace cw {

// Body of POST /containers/create. Optional fields appear only when the spec
// sets them, so the engine's defaults stay in force.
nlohmann::json BuildCreateBody(const ContainerSpec& spec);

// The "message" of an engine error body {"message": "..."}, or the body
// itself (trimmed, shortened) when it is not that JSON.
std::string EngineErrorMessage(std::string_view body);

// An engine answer with an error status as a Status: "<what>: <engine's
// message>", with the code the HTTP status implies (404 NotFound, 400
// InvalidInput, 5xx Internal, ...).
Status EngineHttpError(long http_status, std::string_view body, const std::string& what);

// A pull's failure as a Status: NotFound when the image or repository is not
// there or not ours to pull, Unavailable otherwise (registry unreachable, ...).
Status PullError(std::string_view image, std::string_view engine_message);

// The parts of GET /containers/{id}/json the worker uses (State, SizeRw).
// A body that is not that JSON is Internal.
Result<ContainerState> ParseInspectBody(std::string_view body);

// The parts of GET /containers/{id}/stats the worker uses. Missing figures
// stay -1 (cgroup v2 engines report no peak; a stopped container, nothing).
Result<ContainerStats> ParseStatsBody(std::string_view body);

// One entry of GET /info's Runtimes: {"path": ..., "runtimeArgs": [...]}.
EngineInfo::Runtime RuntimeFromInfo(const nlohmann::json& entry);

// GET /images/json's answer; an entry without an Id is skipped.
Result<std::vector<ImageInfo>> ParseImagesBody(std::string_view body);
// GET /system/df's LayersSize: bytes the image store takes (where the engine
// says 0 but lists images, as Podman 4.3 does: their sizes, each id once).
Result<long long> ParseLayersSize(std::string_view body);

// Reads the pull response: JSON objects, one a line, in chunks cut anywhere.
// Only the current line is buffered, and a runaway line is dropped past 1 MiB.
class PullStreamParser {
 public:
  explicit PullStreamParser(PullProgressFn progress) : progress_(std::move(progress)) {}

  void Feed(std::string_view chunk);
  // Takes a last line that had no newline.
  void Finish();

  // The first error the engine reported in the stream; empty if none. Such a
  // pull failed although the HTTP status was 200.
  const std::string& error() const { return error_; }

 private:
  void ParseLine(std::string_view line);

  PullProgressFn progress_;
  std::string line_;
  bool skipping_ = false;  // inside an over-long line, waiting for its end
  std::string error_;
};

}  // namespace cw
