#include "bundle/competition.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <map>
#include <optional>
#include <system_error>
#include <tuple>

#include "archive/zip.h"
#include "common/safe_file.h"
#include "common/yaml_budget.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

// Real competition.yaml files are a few KB with a few hundred values; these
// leave a wide margin while keeping a "billion laughs" file to an
// InvalidInput within a second.
constexpr std::uint64_t kMaxCompetitionYamlBytes = 4 << 20;
constexpr YamlBudget kCompetitionYamlBudget{
    .max_nodes = 100000, .max_depth = 64, .max_scalar_bytes = 16u << 20};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<int> ParseInt(const std::string& s) {
  int value = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (ec != std::errc() || ptr != end || s.empty()) return std::nullopt;
  return value;
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool Given(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

// Reads one competition.yaml; every message starts with where the file is and,
// when yaml-cpp knows it, the line, because the organizer has to find it.
class Reader {
 public:
  Reader(std::string where, fs::path root) : where_(std::move(where)), root_(std::move(root)) {}

  Status Error(const YAML::Node& node, const std::string& message) const {
    std::string at = where_;
    if (node.IsDefined() && !node.Mark().is_null()) {
      at += ", line " + std::to_string(node.Mark().line + 1);
    }
    return InvalidInput(at + ": " + message);
  }

  // yaml-cpp throws BadSubscript when a scalar is indexed, so every lookup
  // goes through here with its parent's kind checked first.
  static YAML::Node Child(const YAML::Node& map, const char* key) {
    return map.IsMap() ? map[key] : YAML::Node(YAML::NodeType::Undefined);
  }

  Result<std::string> String(const YAML::Node& map, const char* key) const {
    YAML::Node node = Child(map, key);
    if (!Given(node)) return std::string();
    if (!node.IsScalar()) return Error(node, std::string(key) + " must be a single value");
    return node.Scalar();
  }

  Result<int> Int(const YAML::Node& map, const char* key, int fallback) const {
    YAML::Node node = Child(map, key);
    if (!Given(node)) return fallback;
    std::optional<int> value;
    if (node.IsScalar()) value = ParseInt(node.Scalar());
    if (!value) {
      return Error(node, std::string(key) + " must be a whole number, not '" +
                             (node.IsScalar() ? node.Scalar() : "a list or mapping") + "'");
    }
    return *value;
  }

  // Lists may be written as `key:` with nothing after it, which YAML reads as null.
  Result<YAML::Node> Sequence(const YAML::Node& map, const char* key) const {
    YAML::Node node = Child(map, key);
    if (!Given(node)) return YAML::Node(YAML::NodeType::Sequence);
    if (!node.IsSequence()) return Error(node, std::string(key) + " must be a list");
    return node;
  }

  Result<YAML::Node> Mapping(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) return Error(node, what + " must be a mapping (key: value lines)");
    return node;
  }

  Result<std::string> Sorting(const YAML::Node& map, const char* key) const {
    CW_ASSIGN_OR_RETURN(std::string sorting, String(map, key));
    sorting = Lower(sorting);
    if (sorting.empty()) return std::string("desc");
    if (sorting != "asc" && sorting != "desc") {
      return Error(Child(map, key),
                   std::string(key) + " must be 'asc' or 'desc', not '" + sorting + "'");
    }
    return sorting;
  }

  Result<BundleEntry> Entry(const YAML::Node& map, const char* what,
                            const std::string& task) const {
    BundleEntry entry;
    entry.task = task;
    CW_ASSIGN_OR_RETURN(entry.key, String(map, what));
    if (entry.key.empty()) return entry;

    std::string relative = entry.key;
    while (relative.size() > 1 && relative.back() == '/') relative.pop_back();
    fs::path path(relative);
    fs::path normal = path.lexically_normal();
    if (path.is_absolute() || path.has_root_name() || normal.empty() || *normal.begin() == "..") {
      return Error(Child(map, what), std::string(what) + " of task '" + task + "' is '" +
                                         entry.key + "', which points outside the bundle");
    }
    fs::path full = root_ / normal;
    std::error_code ec;
    fs::file_status st = fs::status(full, ec);
    if (fs::is_directory(st)) {
      entry.kind = BundleEntry::Kind::kFolder;
      entry.path = full;
    } else if (fs::is_regular_file(st)) {
      if (Lower(full.extension().string()) != ".zip") {
        return Error(Child(map, what), std::string(what) + " of task '" + task + "' is '" +
                                           entry.key +
                                           "', a file; it must be a folder or a .zip file");
      }
      entry.kind = BundleEntry::Kind::kZip;
      entry.path = full;
    } else {
      entry.kind = BundleEntry::Kind::kServerKey;
    }
    return entry;
  }

  // Reads the four entries of a v2 task or a v1.5 phase.
  Result<TaskSpec> Task(const YAML::Node& map, int index, const std::string& name) const {
    TaskSpec task;
    task.index = index;
    task.name = name;
    CW_ASSIGN_OR_RETURN(task.scoring_program, Entry(map, "scoring_program", name));
    CW_ASSIGN_OR_RETURN(task.ingestion_program, Entry(map, "ingestion_program", name));
    CW_ASSIGN_OR_RETURN(task.input_data, Entry(map, "input_data", name));
    CW_ASSIGN_OR_RETURN(task.reference_data, Entry(map, "reference_data", name));
    return task;
  }

  Status ReadV2(const YAML::Node& doc, Competition& c) const;
  Status ReadV15(const YAML::Node& doc, Competition& c) const;

 private:
  std::string where_;
  fs::path root_;
};

Status Reader::ReadV2(const YAML::Node& doc, Competition& c) const {
  c.version = 2;
  CW_ASSIGN_OR_RETURN(c.docker_image, String(doc, "docker_image"));

  CW_ASSIGN_OR_RETURN(YAML::Node tasks, Sequence(doc, "tasks"));
  std::map<int, TaskSpec> tasks_by_index;
  for (size_t i = 0; i < tasks.size(); ++i) {
    CW_ASSIGN_OR_RETURN(YAML::Node t, Mapping(tasks[i], "each task"));
    CW_ASSIGN_OR_RETURN(int index, Int(t, "index", static_cast<int>(i)));
    CW_ASSIGN_OR_RETURN(std::string name, String(t, "name"));
    CW_ASSIGN_OR_RETURN(std::string key, String(t, "key"));
    if (name.empty()) name = key.empty() ? "task " + std::to_string(index) : key;
    TaskSpec task;
    if (!key.empty()) {
      // Codabench reuses an existing server task for `key` and ignores the rest.
      task.index = index;
      task.name = name;
      for (BundleEntry* e : {&task.scoring_program, &task.ingestion_program, &task.input_data,
                             &task.reference_data}) {
        *e = BundleEntry{BundleEntry::Kind::kServerKey, {}, key, name};
      }
    } else {
      CW_ASSIGN_OR_RETURN(task, Task(t, index, name));
    }
    if (!tasks_by_index.emplace(index, std::move(task)).second) {
      return Error(t, "two tasks have index " + std::to_string(index));
    }
  }

  CW_ASSIGN_OR_RETURN(YAML::Node phases, Sequence(doc, "phases"));
  for (size_t i = 0; i < phases.size(); ++i) {
    CW_ASSIGN_OR_RETURN(YAML::Node p, Mapping(phases[i], "each phase"));
    PhaseSpec phase;
    CW_ASSIGN_OR_RETURN(phase.index, Int(p, "index", static_cast<int>(i)));
    CW_ASSIGN_OR_RETURN(phase.name, String(p, "name"));
    if (phase.name.empty()) phase.name = "phase " + std::to_string(phase.index);
    CW_ASSIGN_OR_RETURN(phase.execution_time_limit, Int(p, "execution_time_limit", 600));
    CW_ASSIGN_OR_RETURN(YAML::Node refs, Sequence(p, "tasks"));
    for (const YAML::Node& ref : refs) {
      std::optional<int> index = ref.IsScalar() ? ParseInt(ref.Scalar()) : std::nullopt;
      if (!index) return Error(ref, "phase '" + phase.name + "': tasks must list task indexes");
      auto it = tasks_by_index.find(*index);
      if (it == tasks_by_index.end()) {
        return Error(ref, "phase '" + phase.name + "' lists task " + std::to_string(*index) +
                              ", but no task has that index");
      }
      phase.tasks.push_back(it->second);
    }
    c.phases.push_back(std::move(phase));
  }

  CW_ASSIGN_OR_RETURN(YAML::Node boards, Sequence(doc, "leaderboards"));
  std::vector<std::pair<int, LeaderboardColumn>> columns;  // (leaderboard index, column)
  for (size_t b = 0; b < boards.size(); ++b) {
    CW_ASSIGN_OR_RETURN(YAML::Node board, Mapping(boards[b], "each leaderboard"));
    CW_ASSIGN_OR_RETURN(int board_index, Int(board, "index", static_cast<int>(b)));
    CW_ASSIGN_OR_RETURN(YAML::Node cols, Sequence(board, "columns"));
    for (size_t i = 0; i < cols.size(); ++i) {
      CW_ASSIGN_OR_RETURN(YAML::Node col, Mapping(cols[i], "each leaderboard column"));
      LeaderboardColumn column;
      CW_ASSIGN_OR_RETURN(column.key, String(col, "key"));
      if (column.key.empty()) return Error(col, "a leaderboard column has no key");
      CW_ASSIGN_OR_RETURN(column.title, String(col, "title"));
      if (column.title.empty()) column.title = column.key;
      CW_ASSIGN_OR_RETURN(column.index, Int(col, "index", static_cast<int>(i)));
      CW_ASSIGN_OR_RETURN(column.sorting, Sorting(col, "sorting"));
      CW_ASSIGN_OR_RETURN(column.numeric_format, Int(col, "precision", -1));
      columns.emplace_back(board_index, std::move(column));
    }
  }
  std::stable_sort(columns.begin(), columns.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first, a.second.index) < std::tie(b.first, b.second.index);
  });
  for (auto& [board, column] : columns) c.columns.push_back(std::move(column));
  return Status::Ok();
}

Status Reader::ReadV15(const YAML::Node& doc, Competition& c) const {
  c.version = 1;
  CW_ASSIGN_OR_RETURN(c.docker_image, String(doc, "competition_docker_image"));

  // `phases` is a mapping from phase number to phase; some bundles write a list.
  YAML::Node phases = Child(doc, "phases");
  if (Given(phases) && !phases.IsMap() && !phases.IsSequence()) {
    return Error(phases, "phases must be a mapping from phase number to phase");
  }
  int position = 0;
  for (auto it = phases.begin(); it != phases.end(); ++it, ++position) {
    YAML::Node node = phases.IsMap() ? it->second : *it;
    CW_ASSIGN_OR_RETURN(YAML::Node p, Mapping(node, "each phase"));
    std::optional<int> number = phases.IsMap() ? ParseInt(it->first.Scalar()) : std::nullopt;
    PhaseSpec phase;
    CW_ASSIGN_OR_RETURN(phase.index, Int(p, "phasenumber", number.value_or(position + 1)));
    CW_ASSIGN_OR_RETURN(phase.name, String(p, "label"));
    if (phase.name.empty()) phase.name = "phase " + std::to_string(phase.index);
    CW_ASSIGN_OR_RETURN(phase.execution_time_limit, Int(p, "execution_time_limit", 600));
    CW_ASSIGN_OR_RETURN(TaskSpec task, Task(p, 0, phase.name));
    phase.tasks.push_back(std::move(task));
    c.phases.push_back(std::move(phase));
  }
  std::stable_sort(c.phases.begin(), c.phases.end(),
                   [](const PhaseSpec& a, const PhaseSpec& b) { return a.index < b.index; });

  YAML::Node board = Child(doc, "leaderboard");
  if (!Given(board)) return Status::Ok();
  CW_RETURN_IF_ERROR(Mapping(board, "leaderboard").status());
  YAML::Node cols = Child(board, "columns");
  if (!Given(cols)) return Status::Ok();
  CW_RETURN_IF_ERROR(Mapping(cols, "leaderboard columns").status());
  std::vector<std::pair<int, LeaderboardColumn>> columns;  // (rank, column)
  for (auto it = cols.begin(); it != cols.end(); ++it) {
    LeaderboardColumn column;
    column.key = it->first.Scalar();
    YAML::Node col = it->second;
    int rank = INT_MAX;  // unranked columns go last
    if (Given(col)) {
      CW_RETURN_IF_ERROR(Mapping(col, "column '" + column.key + "'").status());
      CW_ASSIGN_OR_RETURN(column.title, String(col, "label"));
      CW_ASSIGN_OR_RETURN(column.sorting, Sorting(col, "sort"));
      CW_ASSIGN_OR_RETURN(column.numeric_format, Int(col, "numeric_format", -1));
      CW_ASSIGN_OR_RETURN(rank, Int(col, "rank", INT_MAX));
    }
    if (column.title.empty()) column.title = column.key;
    columns.emplace_back(rank, std::move(column));
  }
  std::sort(columns.begin(), columns.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first, a.second.key) < std::tie(b.first, b.second.key);
  });
  for (auto& [rank, column] : columns) {
    column.index = static_cast<int>(c.columns.size());
    c.columns.push_back(std::move(column));
  }
  return Status::Ok();
}

Result<fs::path> FindCompetitionYaml(const fs::path& dir, const std::string& shown) {
  // symlink_status: a link (or FIFO, ...) by that name is found here and
  // refused by the reader, rather than followed or passed over.
  auto find_in = [](const fs::path& d) -> std::optional<fs::path> {
    for (const char* name : {"competition.yaml", "competition.yml"}) {
      std::error_code ec;
      fs::file_status st = fs::symlink_status(d / name, ec);
      if (fs::exists(st) && !fs::is_directory(st)) return d / name;
    }
    return std::nullopt;
  };
  if (auto found = find_in(dir)) return *found;

  // "Compress folder" tools put everything inside one top-level folder.
  std::vector<fs::path> folders;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    std::error_code type_ec;
    // Not through a link: the bundle's folder must be the bundle's own.
    if (name == "__MACOSX" || name.starts_with(".") || e.is_symlink(type_ec) ||
        !e.is_directory(type_ec)) {
      continue;
    }
    folders.push_back(e.path());
  }
  if (folders.size() == 1) {
    if (auto found = find_in(folders[0])) return *found;
  }
  return InvalidInput(shown +
                      ": no competition.yaml at its root; is this a Codabench competition bundle?");
}

// Phases and tasks are picked alike: by their own index first, because that
// is what competition.yaml shows, then by position counting from 1.
template <typename T>
const T* FindByNumber(const std::vector<T>& items, int n) {
  for (const T& item : items) {
    if (item.index == n) return &item;
  }
  if (n >= 1 && n <= static_cast<int>(items.size())) return &items[n - 1];
  return nullptr;
}

// "0 'Development', 1 'Final'", for messages that list the choices.
template <typename T>
std::string Listing(const std::vector<T>& items) {
  std::string out;
  for (const T& item : items) {
    out += (out.empty() ? "" : ", ") + std::to_string(item.index) + " '" + item.name + "'";
  }
  return out;
}

}  // namespace

Result<Competition> LoadCompetition(const fs::path& bundle, const fs::path& work_dir) {
  const std::string shown = bundle.string();
  std::error_code ec;
  fs::file_status st = fs::status(bundle, ec);
  fs::path dir;
  if (fs::is_directory(st)) {
    dir = bundle;
  } else if (!fs::exists(st)) {
    return NotFound(shown + ": no such file or folder");
  } else if (fs::is_regular_file(st) && LooksLikeZip(bundle)) {
    Result<ExtractStats> extracted = ExtractZip(bundle, work_dir);
    if (!extracted.ok()) return extracted.status().Prefixed("unpacking " + shown);
    dir = work_dir;
  } else {
    return InvalidInput(
        shown +
        ": neither a zip file nor a folder; a competition bundle is a zip (or a folder) "
        "with competition.yaml at its root");
  }
  dir = fs::weakly_canonical(fs::absolute(dir), ec);
  if (ec) return IoError(shown + ": " + ec.message());

  CW_ASSIGN_OR_RETURN(fs::path yaml, FindCompetitionYaml(dir, shown));
  const std::string where = shown + ": " + yaml.lexically_relative(dir).string();

  Result<std::string> text = ReadRegularFile(yaml, kMaxCompetitionYamlBytes);
  if (!text.ok()) return Status(text.status().code(), where + ": " + text.status().message());

  Competition c;
  c.root = yaml.parent_path();
  Reader reader(where, c.root);
  // The reader checks each node's kind before it converts it; this only
  // catches what a malformed document could still make yaml-cpp throw, and
  // running out of memory, which the budget below should make impossible.
  try {
    YAML::Node doc;
    try {
      doc = YAML::Load(*text);
    } catch (const YAML::ParserException& e) {
      return InvalidInput(where + ", line " + std::to_string(e.mark.line + 1) + ", column " +
                          std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
    }
    if (!doc.IsMap()) return InvalidInput(where + ": must be a YAML mapping (key: value lines)");
    // Anchors and aliases are legitimate (1.5 bundles share leaderboard
    // columns with them), but the reader walks what they expand to.
    CW_RETURN_IF_ERROR(CheckYamlBudget(doc, where, kCompetitionYamlBudget));

    CW_ASSIGN_OR_RETURN(c.title, reader.String(doc, "title"));
    CW_ASSIGN_OR_RETURN(std::string version, reader.String(doc, "version"));
    if (version == "2" || Given(Reader::Child(doc, "tasks"))) {
      CW_RETURN_IF_ERROR(reader.ReadV2(doc, c));
    } else {
      CW_RETURN_IF_ERROR(reader.ReadV15(doc, c));
    }
  } catch (const YAML::Exception& e) {
    return InvalidInput(where + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return InvalidInput(where + ": too big to read");
  } catch (const std::exception& e) {
    return Internal(where + ": " + e.what());
  }
  if (c.docker_image.empty()) c.docker_image = kDefaultCompetitionImage;
  return c;
}

Result<const PhaseSpec*> SelectPhase(const Competition& competition, const std::string& selector) {
  const std::vector<PhaseSpec>& phases = competition.phases;
  if (phases.empty()) return InvalidInput("competition.yaml defines no phases");
  if (selector.empty()) return &phases.front();
  if (std::optional<int> n = ParseInt(selector)) {
    if (const PhaseSpec* p = FindByNumber(phases, *n)) return p;
  } else {
    for (const PhaseSpec& p : phases) {
      if (Lower(p.name) == Lower(selector)) return &p;
    }
  }
  return InvalidInput("no phase '" + selector + "' in this competition; its phases are " +
                      Listing(phases));
}

Result<const TaskSpec*> SelectTask(const PhaseSpec& phase, int task) {
  if (phase.tasks.empty()) return InvalidInput("phase '" + phase.name + "' has no tasks");
  if (task < 0) return &phase.tasks.front();
  if (const TaskSpec* t = FindByNumber(phase.tasks, task)) return t;
  return InvalidInput("phase '" + phase.name + "' has no task " + std::to_string(task) +
                      "; its tasks are " + Listing(phase.tasks));
}

Status RequireLocal(const BundleEntry& entry, const std::string& what) {
  if (entry.kind != BundleEntry::Kind::kServerKey) return Status::Ok();
  const std::string head = what + " of task '" + entry.task + "' is '" + entry.key + "'";
  const char* tail = "put the folder or zip in the bundle to run it locally";
  if (IsUuid(entry.key)) {
    return InvalidInput(head + ", a dataset key that only a Codabench server can resolve; " + tail);
  }
  // Not key-shaped: more likely a folder or zip the organizer forgot to add.
  return InvalidInput(
      head +
      ", which is neither a folder nor a zip in the bundle (a Codabench server would read it as "
      "a dataset key); " +
      tail);
}

}  // namespace cw
