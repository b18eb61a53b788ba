#include "job/program_files.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace cw {
namespace fs = std::filesystem;

Result<ProgramMetadata> ReadProgramMetadata(const fs::path& dir) {
  ProgramMetadata m;
  std::error_code ec;
  for (const char* name : {"metadata.yaml", "metadata"}) {
    fs::path p = dir / name;
    if (fs::is_regular_file(p, ec)) {
      m.has_metadata = true;
      m.file = p;
      break;
    }
  }
  if (!m.has_metadata) return m;
  YAML::Node node;
  try {
    node = YAML::LoadFile(m.file.string());
  } catch (const YAML::Exception& e) {
    return InvalidInput(m.file.filename().string() + " is not valid YAML (line " +
                        std::to_string(e.mark.line + 1) + ", column " +
                        std::to_string(e.mark.column + 1) + "): " + e.msg);
  }
  if (node.IsMap() && node["command"] && node["command"].IsScalar()) {
    std::string command = node["command"].as<std::string>();
    if (!command.empty()) m.command = command;
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

nlohmann::json YamlToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& kv : node) obj[kv.first.as<std::string>()] = YamlToJson(kv.second);
    return obj;
  }
  if (node.IsSequence()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& item : node) arr.push_back(YamlToJson(item));
    return arr;
  }
  if (node.IsScalar()) {
    std::string s = node.Scalar();
    if (node.Tag() == "!") return s;  // quoted in the file: keep as a string
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (const std::exception&) {
    }
    return s;
  }
  return nullptr;
}

}  // namespace

Result<nlohmann::json> ReadScores(const fs::path& output_dir) {
  std::error_code ec;
  fs::path json_path = output_dir / "scores.json";
  fs::path txt_path = output_dir / "scores.txt";
  nlohmann::json raw;
  std::string source;
  if (fs::is_regular_file(json_path, ec)) {
    source = "scores.json";
    std::ifstream in(json_path);
    try {
      raw = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      return InvalidInput("Could not decode scores.json written by the scoring program: " +
                          std::string(e.what()));
    }
  } else if (fs::is_regular_file(txt_path, ec)) {
    source = "scores.txt";
    try {
      raw = YamlToJson(YAML::LoadFile(txt_path.string()));
    } catch (const YAML::Exception& e) {
      return InvalidInput("Could not read scores.txt written by the scoring program (line " +
                          std::to_string(e.mark.line + 1) + "): " + e.msg);
    }
  } else {
    return InvalidInput(
        "Could not find scores file: the scoring program wrote neither scores.json nor "
        "scores.txt into its output folder");
  }
  if (!raw.is_object()) {
    return InvalidInput(source + " must hold a mapping of score names to numbers, got: " +
                        raw.dump().substr(0, 200));
  }
  nlohmann::json scores = nlohmann::json::object();
  for (auto& [key, value] : raw.items()) {
    auto n = ScoreNumber(value);
    if (n && std::isfinite(*n)) scores[key] = *n;
  }
  if (scores.empty()) {
    return InvalidInput(source + " holds no numeric score: " + raw.dump().substr(0, 200));
  }
  return scores;
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

}  // namespace

Status WriteOutputMetadata(const fs::path& output_dir, const ProgramOutcome& program,
                           const ProgramOutcome& ingestion) {
  fs::path path = output_dir / "metadata";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec))) {
    return InvalidInput(
        "The program wrote a file named 'metadata' into its output folder; that name is "
        "reserved for the worker's record of exit codes and run times. Rename the file.");
  }
  YAML::Emitter out;
  out << YAML::BeginMap;
  // As the Python worker (for v1.5): elapsedTime is the ingestion program's
  // when the submission did not run (results only, or code it imports), so
  // a scoring program's Duration column does not read null.
  ProgramOutcome shown = program;
  if (!shown.elapsed_seconds || *shown.elapsed_seconds == 0) {
    shown.elapsed_seconds = ingestion.elapsed_seconds;
  }
  EmitOutcome(out, "exitCode", "elapsedTime", shown);
  EmitOutcome(out, "ingestionExitCode", "ingestionElapsedTime", ingestion);
  out << YAML::EndMap;
  std::ofstream f(path);
  f << out.c_str() << "\n";
  if (!f) return IoError("cannot write " + path.string());
  return Status::Ok();
}

}  // namespace cw
