// What the pipeline reads from and writes into a job's folders: a program's
// metadata (its command), the scores file, the output `metadata` file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cw {

struct ProgramMetadata {
  bool has_metadata = false;           // metadata.yaml or metadata exists
  std::filesystem::path file;          // which one
  std::optional<std::string> command;  // its `command`, when set and non-empty
};

// Reads `dir/metadata.yaml`, else `dir/metadata`. A file that is not YAML is
// InvalidInput naming the file and the line.
Result<ProgramMetadata> ReadProgramMetadata(const std::filesystem::path& dir);

// Zips made by "compress folder" hold one top folder: when `dir` has no
// metadata and no files but exactly one folder (ignoring __MACOSX) that has
// metadata, that folder's contents move up into `dir`. Returns true if moved.
Result<bool> HoistSingleTopFolder(const std::filesystem::path& dir);

// Scores from `output/scores.json` (a JSON object) or else `output/scores.txt`
// (a YAML mapping). Values become numbers; numeric strings are converted;
// other values are dropped (they cannot be leaderboard scores). No file, a
// file that does not parse, or no numeric score: InvalidInput for the organizer.
Result<nlohmann::json> ReadScores(const std::filesystem::path& output_dir);

struct ProgramOutcome {
  std::optional<int> exit_code;           // none: did not run or was killed before exit
  std::optional<double> elapsed_seconds;
};

// Writes `output/metadata` (YAML: exitCode, elapsedTime, ingestionExitCode,
// ingestionElapsedTime; null for a program that did not run, except that
// elapsedTime falls back to the ingestion's, as the Python worker does). Fails
// when the programs already wrote a file of that name.
Status WriteOutputMetadata(const std::filesystem::path& output_dir, const ProgramOutcome& program,
                           const ProgramOutcome& ingestion);

}  // namespace cw
