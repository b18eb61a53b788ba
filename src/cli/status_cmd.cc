#include "cli/status_cmd.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/hostname.h"
#include "worker/status_socket.h"
#include "worker/status_text.h"

namespace cw {
namespace fs = std::filesystem;

namespace {

// The worker this command means: the options, else the settings the worker
// reads (its base directory holds one socket per node name).
Result<StatusTarget> FindTarget(const StatusCommandOptions& options) {
  if (!options.socket.empty()) return StatusTarget{options.socket, ""};
  if (!options.address.empty()) return StatusTarget{"", options.address};
  CW_ASSIGN_OR_RETURN(WorkerConfig config, LoadConfig(options.env_file));
  if (!options.nodename.empty()) {
    return StatusTarget{StatusSocketPath(config.base_directory, options.nodename).string(), ""};
  }
  const fs::path default_socket =
      StatusSocketPath(config.base_directory, DefaultNodeName());
  std::error_code ec;
  if (fs::exists(fs::symlink_status(default_socket, ec))) {
    return StatusTarget{default_socket.string(), ""};
  }
  // Workers started with --nodename: one is the one meant, several need a choice.
  const fs::path folder = StatusSocketFolder(config.base_directory);
  std::vector<fs::path> found;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".sock") found.push_back(it->path());
  }
  if (found.size() == 1) return StatusTarget{found[0].string(), ""};
  if (found.size() > 1) {
    std::string names;
    for (const fs::path& p : found) names += (names.empty() ? "" : ", ") + p.stem().string();
    return InvalidInput("several workers use " + folder.string() + " (" + names +
                        "): choose one with --nodename");
  }
  if (!config.metrics_address.empty()) return StatusTarget{"", config.metrics_address};
  return Unavailable("no worker is running here: no status socket in " + folder.string() +
                     " (a worker with other settings? give --env-file, --socket or --address)");
}

// METRICS_TOKEN from the worker's settings (--env-file, ./.env, the
// environment), for a metrics address; the unix socket needs none.
std::string MetricsToken(const StatusCommandOptions& options) {
  auto config = LoadConfig(options.env_file);
  if (config.ok()) return config->metrics_token;
  const char* token = std::getenv("METRICS_TOKEN");
  return token ? token : "";
}

}  // namespace

int RunStatusCommand(const StatusCommandOptions& options) {
  auto target = FindTarget(options);
  if (!target.ok()) {
    std::fprintf(stderr, "error: %s\n", target.status().message().c_str());
    return 1;
  }
  StatusClientOptions client;
  if (!target->address.empty()) client.token = MetricsToken(options);
  auto status = FetchStatus(*target, client);
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", status.status().message().c_str());
    return 1;
  }
  const std::string out = options.json ? status->dump(2) + "\n" : FormatStatus(*status);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace cw
