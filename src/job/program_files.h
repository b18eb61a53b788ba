// What the pipeline reads from and writes into a job's folders: a program's
// metadata (its command), the scores file, the output `metadata` file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/env.h"
#include "common/status.h"
#include "common/yaml_budget.h"
#include "job/gpu_usage.h"

namespace cw {

struct ProgramMetadata {
  bool has_metadata = false;           // metadata.yaml or metadata exists
  std::filesystem::path file;          // which one
  std::optional<std::string> command;  // its `command`, when set and non-empty
};

// The most a program's metadata file, scores.json or scores.txt may hold.
inline constexpr std::uint64_t kMaxMetadataBytes = 1 << 20;
inline constexpr std::uint64_t kMaxScoresBytes = 1 << 20;

// Reads `dir/metadata.yaml`, else `dir/metadata`. A file that is not YAML is
// InvalidInput naming the file and the line. The file is read without
// following links and at most kMaxMetadataBytes of it: a metadata file that
// is a symbolic link, FIFO, socket or device, or is bigger, is InvalidInput
// (bundles and submissions come from strangers). A folder of either name is
// not a metadata file and is passed over, as before.
Result<ProgramMetadata> ReadProgramMetadata(const std::filesystem::path& dir);

// Zips made by "compress folder" hold one top folder: when `dir` has no
// metadata and no files but exactly one folder (ignoring __MACOSX) that has
// metadata, that folder's contents move up into `dir`. Returns true if moved.
Result<bool> HoistSingleTopFolder(const std::filesystem::path& dir);

// Scores from `output/scores.json` (a JSON object) or else `output/scores.txt`
// (a YAML mapping). Values become numbers; numeric strings are converted;
// other values, and names that are not valid UTF-8, are dropped (they cannot
// be leaderboard scores). No file, a file that does not parse, or no numeric
// score: InvalidInput for the organizer.
//
// The output folder is written by the (untrusted) programs, so: the file is
// never followed through a link, never opened if it is a FIFO, socket,
// device or folder, never read past kMaxScoresBytes; JSON deeper than
// kMaxJsonDepth (common/json_parse.h) and YAML past the default YamlBudget are refused. A
// scores.json that exists but is not a readable regular file is an error
// naming it; there is no quiet fallback to scores.txt, because the file the
// scoring program meant is scores.json and reading another would hide that.
// Messages never quote the file's bytes; a dump of the content appears only
// once it has parsed (and is cut short).
Result<nlohmann::json> ReadScores(const std::filesystem::path& output_dir);

struct ProgramOutcome {
  std::optional<int> exit_code;           // none: did not run or was killed before exit
  std::optional<double> elapsed_seconds;
  // What the program's container used, sampled while it ran (about every
  // second): none when the engine gave no figure.
  std::optional<long long> peak_memory_bytes;
  std::optional<double> cpu_seconds;
};

// `node` as JSON, with every alias expanded, within `budget` (see
// CheckYamlBudget; InvalidInput starting with `what` when past it). Scalars
// that read as numbers become numbers unless quoted in the file; a list or
// mapping used as a mapping key is InvalidInput. Throws nothing.
Result<nlohmann::json> YamlToJsonBudgeted(const YAML::Node& node, const std::string& what,
                                          const YamlBudget& budget = {});

// Writes `output/metadata` (YAML: exitCode, elapsedTime, ingestionExitCode,
// ingestionElapsedTime; null for a program that did not run; then what each
// program used, and what the slot's GPUs did while they ran, gpuPeakMemoryBytes
// and gpuMeanUtilization, when `gpu` has them). Fails when the
// programs already wrote a file (or link, or anything) of that name: the file
// is created with O_CREAT|O_EXCL|O_NOFOLLOW, so a link left there is never
// written through. Written through `env`: a failing write (a full disk) is
// IoError naming "the output's metadata file", and takes the file back.
Status WriteOutputMetadata(const std::filesystem::path& output_dir, const ProgramOutcome& program,
                           const ProgramOutcome& ingestion, const GpuUsage& gpu = {},
                           Env& env = Env::Default());

}  // namespace cw
