// A Codabench competition bundle, read for `run-local`: which programs and
// data each phase and task runs, in the two competition.yaml formats in use
// (version 2, and CodaLab's version 1.5). See the contract, section 8.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace cw {

// A program or dataset named by a task (v2) or a phase (v1.5).
struct BundleEntry {
  enum class Kind {
    kNone,       // not given
    kFolder,     // a folder inside the bundle
    kZip,        // a zip file inside the bundle
    kServerKey,  // nothing in the bundle by that name: a key only a server can resolve
  };
  Kind kind = Kind::kNone;
  std::filesystem::path path;  // absolute, for kFolder and kZip
  std::string key;             // the value as written in competition.yaml
  std::string task;            // the owning task's name, so messages can point at it
};

struct TaskSpec {
  int index = 0;
  std::string name;
  BundleEntry scoring_program, ingestion_program, input_data, reference_data;
};

struct PhaseSpec {
  int index = 0;  // v2: `index` (default: position from 0); v1.5: the phase number
  std::string name;
  int execution_time_limit = 600;  // seconds
  std::vector<TaskSpec> tasks;
};

struct LeaderboardColumn {
  std::string key, title;
  // v2: the column's `index` (default: position in its leaderboard);
  // v1.5: position once ordered by `rank`.
  int index = 0;
  std::string sorting = "desc";  // "desc" or "asc"
  int numeric_format = -1;       // digits after the point; -1 when not given
};

struct Competition {
  int version = 2;  // 2, or 1 for CodaLab's 1.5
  std::string title;
  std::string docker_image;
  std::vector<PhaseSpec> phases;
  // All columns of all leaderboards, by leaderboard then column order.
  std::vector<LeaderboardColumn> columns;
  std::filesystem::path root;  // the folder holding competition.yaml (absolute)
};

inline constexpr const char* kDefaultCompetitionImage = "codalab/codalab-legacy:py37";

// Reads the bundle at `bundle`: a folder, or a zip that is unpacked into
// `work_dir`. competition.yaml (or .yml) may sit at the root or inside the one
// top-level folder that "compress folder" tools add. Every problem an
// organizer can fix is InvalidInput with a message saying what to fix.
// Bundles come from strangers: competition.yaml is not read through a link,
// nor past 4 MB, and its anchors and aliases may expand to at most 100000
// values, 64 levels, 16 MB of text (see CheckYamlBudget); past those, and for
// an alias inside its own anchor, InvalidInput. Throws nothing.
Result<Competition> LoadCompetition(const std::filesystem::path& bundle,
                                    const std::filesystem::path& work_dir);

// `selector`: "" picks the first phase; a number picks the phase with that
// index (v2 `index`, v1.5 phase number), or else the phase at that position
// counting from 1; anything else is a phase name, compared case-insensitively.
Result<const PhaseSpec*> SelectPhase(const Competition& competition, const std::string& selector);

// `task`: -1 picks the first task; otherwise the task with that index, or else
// the task at that position counting from 1.
Result<const TaskSpec*> SelectTask(const PhaseSpec& phase, int task);

// Ok for an entry a local run can use (kNone, kFolder, kZip); InvalidInput
// naming the task and the key for a kServerKey entry. `what` is the entry's
// name in competition.yaml ("scoring_program").
Status RequireLocal(const BundleEntry& entry, const std::string& what);

}  // namespace cw
