#include "job/program_files.h"

#include "common/json_parse.h"

#include <fcntl.h>

#include <cerrno>
#include <cmath>
#include <new>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "common/fd.h"
#include "common/safe_file.h"

namespace cw {
namespace fs = std::filesystem;

Result<ProgramMetadata> ReadProgramMetadata(const fs::path& dir) {
  ProgramMetadata m;
  for (const char* name : {"metadata.yaml", "metadata"}) {
    fs::path p = dir / name;
    std::error_code ec;
    fs::file_status st = fs::symlink_status(p, ec);
    // A folder of that name is not a metadata file; anything else is, and
    // ReadRegularFile refuses the kinds it will not read (links, FIFOs, ...).
    if (fs::exists(st) && !fs::is_directory(st)) {
      m.has_metadata = true;
      m.file = p;
      break;
    }
  }
  if (!m.has_metadata) return m;
  const std::string name = m.file.filename().string();
  try {
    CW_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(m.file, kMaxMetadataBytes));
    YAML::Node node;
    try {
      node = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return InvalidInput(name + " is not valid YAML (line " + std::to_string(e.mark.line + 1) +
                          ", column " + std::to_string(e.mark.column + 1) + "): " + e.msg);
    }
    // Only `command` is looked at, so aliases elsewhere cannot make this expand.
    if (node.IsMap()) {
      const YAML::Node& map = node;
      YAML::Node command = map["command"];  // invalid, not throwing, until looked into
      if (command.IsDefined() && command.IsScalar() && !command.Scalar().empty()) {
        m.command = command.Scalar();
      }
    }
  } catch (const std::bad_alloc&) {
    return InvalidInput(name + " is too big to read");
  } catch (const std::exception& e) {
    return Internal("reading " + name + ": " + e.what());
  }
  return m;
}

Result<bool> HoistSingleTopFolder(const fs::path& dir) {
  std::error_code ec;
  fs::path only_dir;
  int dirs = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name == "__MACOSX") continue;
    if (entry.is_directory() && !entry.is_symlink()) {
      ++dirs;
      only_dir = entry.path();
    } else if (name != ".DS_Store") {
      return false;  // a file at the top: the layout is what the author meant
    }
  }
  if (ec) return IoError("cannot list " + dir.string() + ": " + ec.message());
  if (dirs != 1) return false;
  auto inner = ReadProgramMetadata(only_dir);
  if (!inner.ok() || !inner->has_metadata) return false;
  // Move the inner folder aside first: it may hold an entry with its own name.
  fs::path tmp = dir / (".hoist-" + only_dir.filename().string());
  fs::rename(only_dir, tmp, ec);
  if (ec) return IoError("cannot move " + only_dir.string() + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    fs::rename(entry.path(), dir / entry.path().filename(), ec);
    if (ec) return IoError("cannot move " + entry.path().string() + ": " + ec.message());
  }
  fs::remove_all(tmp, ec);
  return true;
}

namespace {

// A score value as a number, or nullopt when it is not one.
std::optional<double> ScoreNumber(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

// Converts a tree CheckYamlBudget has passed, so the recursion is bounded.
Result<nlohmann::json> YamlToJson(const YAML::Node& node, const std::string& what) {
  if (node.IsMap()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        std::string at;
        if (!kv.first.Mark().is_null()) at = " on line " + std::to_string(kv.first.Mark().line + 1);
        return InvalidInput(what + ": a key" + at + " is not a plain name");
      }
      CW_ASSIGN_OR_RETURN(obj[kv.first.Scalar()], YamlToJson(kv.second, what));
    }
    return obj;
  }
  if (node.IsSequence()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& item : node) {
      CW_ASSIGN_OR_RETURN(nlohmann::json value, YamlToJson(item, what));
      arr.push_back(std::move(value));
    }
    return arr;
  }
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (node.Tag() == "!") return nlohmann::json(s);  // quoted in the file: keep as a string
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size()) return nlohmann::json(d);
    } catch (const std::invalid_argument&) {
    } catch (const std::out_of_range&) {
    }
    return nlohmann::json(s);
  }
  return nlohmann::json(nullptr);
}

// The start of parsed content, for a message: ASCII only (so cutting it
// cannot split a character), invalid UTF-8 replaced, at most 200 characters.
std::string Excerpt(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

// Whether `text` is valid UTF-8, as JSON text must be (YAML scalars may not be).
bool IsUtf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

Result<nlohmann::json> ParseScoresJson(const std::string& text) {
  auto parsed = ParseJsonBounded(text, "scores.json written by the scoring program");
  if (!parsed.ok()) return parsed.status().Prefixed("Could not decode scores.json");
  return parsed;
}

}  // namespace

Result<nlohmann::json> YamlToJsonBudgeted(const YAML::Node& node, const std::string& what,
                                          const YamlBudget& budget) {
  try {
    CW_RETURN_IF_ERROR(CheckYamlBudget(node, what, budget));
    return YamlToJson(node, what);
  } catch (const std::bad_alloc&) {
    return InvalidInput(what + " is too big to convert");
  } catch (const std::exception& e) {
    return Internal("converting " + what + ": " + e.what());
  }
}

namespace {

Result<nlohmann::json> ReadScoresFile(const fs::path& output_dir, std::string& source) {
  fs::path json_path = output_dir / "scores.json";
  fs::path txt_path = output_dir / "scores.txt";
  std::error_code ec;
  // symlink_status: a link named scores.json counts as there (and is refused).
  if (fs::exists(fs::symlink_status(json_path, ec))) {
    source = "scores.json";
    Result<std::string> text = ReadRegularFile(json_path, kMaxScoresBytes);
    if (!text.ok()) return text.status().Prefixed("Could not read the scoring program's scores");
    return ParseScoresJson(*text);
  }
  if (fs::exists(fs::symlink_status(txt_path, ec))) {
    source = "scores.txt";
    Result<std::string> text = ReadRegularFile(txt_path, kMaxScoresBytes);
    if (!text.ok()) return text.status().Prefixed("Could not read the scoring program's scores");
    YAML::Node node;
    try {
      node = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
      return InvalidInput("Could not read scores.txt written by the scoring program (line " +
                          std::to_string(e.mark.line + 1) + "): " + e.msg);
    }
    return YamlToJsonBudgeted(node, "scores.txt");
  }
  return InvalidInput(
      "Could not find scores file: the scoring program wrote neither scores.json nor "
      "scores.txt into its output folder");
}

}  // namespace

Result<nlohmann::json> ReadScores(const fs::path& output_dir) {
  try {
    std::string source;
    CW_ASSIGN_OR_RETURN(nlohmann::json raw, ReadScoresFile(output_dir, source));
    if (!raw.is_object()) {
      return InvalidInput(source + " must hold a mapping of score names to numbers, got: " +
                          Excerpt(raw));
    }
    nlohmann::json scores = nlohmann::json::object();
    for (auto& [key, value] : raw.items()) {
      if (!IsUtf8(key)) continue;  // it could not be sent on: dump() would throw
      auto n = ScoreNumber(value);
      if (n && std::isfinite(*n)) scores[key] = *n;
    }
    if (scores.empty()) return InvalidInput(source + " holds no numeric score: " + Excerpt(raw));
    return scores;
  } catch (const std::bad_alloc&) {
    return InvalidInput("the scores written by the scoring program are too big to read");
  } catch (const std::exception& e) {
    return Internal(std::string("reading the scores: ") + e.what());
  }
}

namespace {

void EmitOutcome(YAML::Emitter& out, const char* code_key, const char* time_key,
                 const ProgramOutcome& o) {
  out << YAML::Key << code_key << YAML::Value;
  if (o.exit_code) {
    out << *o.exit_code;
  } else {
    out << YAML::Null;
  }
  out << YAML::Key << time_key << YAML::Value;
  if (o.elapsed_seconds) {
    out << *o.elapsed_seconds;
  } else {
    out << YAML::Null;
  }
}

void EmitUsage(YAML::Emitter& out, const char* memory_key, const char* cpu_key,
               const ProgramOutcome& o) {
  if (o.peak_memory_bytes) out << YAML::Key << memory_key << YAML::Value << *o.peak_memory_bytes;
  if (o.cpu_seconds) out << YAML::Key << cpu_key << YAML::Value << *o.cpu_seconds;
}

void EmitGpuUsage(YAML::Emitter& out, const GpuUsage& gpu) {
  if (gpu.peak_memory_bytes) {
    out << YAML::Key << "gpuPeakMemoryBytes" << YAML::Value << *gpu.peak_memory_bytes;
  }
  if (gpu.mean_utilization_percent) {
    // One decimal, written with 4 digits at most (0 to 100.0): the emitter's
    // default, 17, writes 87.3 as 87.299999999999997.
    out << YAML::Key << "gpuMeanUtilization" << YAML::Value << YAML::DoublePrecision(4)
        << std::round(*gpu.mean_utilization_percent * 10) / 10;
  }
}

}  // namespace

Status WriteOutputMetadata(const fs::path& output_dir, const ProgramOutcome& program,
                           const ProgramOutcome& ingestion, const GpuUsage& gpu, Env& env) {
  fs::path path = output_dir / "metadata";
  YAML::Emitter out;
  out << YAML::BeginMap;
  EmitOutcome(out, "exitCode", "elapsedTime", program);
  EmitOutcome(out, "ingestionExitCode", "ingestionElapsedTime", ingestion);
  // Ours, beside the Python worker's keys (which stay as they are): what
  // each program used, for organizers and participants to read.
  EmitUsage(out, "peakMemoryBytes", "cpuSeconds", program);
  EmitUsage(out, "ingestionPeakMemoryBytes", "ingestionCpuSeconds", ingestion);
  EmitGpuUsage(out, gpu);
  out << YAML::EndMap;
  std::string text = std::string(out.c_str()) + "\n";
  // Exclusive and never through a link: whatever the programs left under
  // this name (a file, a link to a file of the worker's, a FIFO) is refused,
  // never written through.
  auto file = env.NewWritableFile(path, {true, 0644, "the output's metadata file"});
  if (!file.ok()) {
    Code code = file.status().code();
    if (code == Code::kAlreadyExists || code == Code::kInvalidInput) {
      return InvalidInput(
          "The program wrote a file named 'metadata' into its output folder; that name is "
          "reserved for the worker's record of exit codes and run times. Rename the file.");
    }
    return file.status();
  }
  Status written = (*file)->Write(text.data(), text.size());
  Status closed = (*file)->Close();
  if (written.ok()) written = closed;
  if (!written.ok()) (void)env.RemoveFile(path);  // ours, and half written
  return written;
}

}  // namespace cw
