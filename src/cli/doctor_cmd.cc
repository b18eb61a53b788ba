#include "cli/doctor_cmd.h"

#include <cstdio>

#include "broker/amqp_client.h"
#include "doctor/doctor.h"
#include "engine/docker_engine.h"
#include "gpu/gpu_info.h"

namespace cw {

int RunDoctorCommand(const DoctorCommandOptions& options) {
  std::printf("codabench-worker doctor%s\n",
              options.env_file ? (" (settings: " + options.env_file->string() + ")").c_str() : "");
  auto config = LoadConfig(options.env_file, options.overrides);
  if (!config.ok()) {
    std::printf("%s\n", FormatCheck({"settings", DoctorCheck::Level::kFail,
                                     config.status().message(), "fix it in .env"})
                            .c_str());
    return 1;
  }
  DockerEngineOptions engine_options;
  engine_options.call_timeout = std::chrono::seconds(30);
  DockerEngine engine(config->container_socket, engine_options);

  DoctorDeps deps;
  deps.engine = &engine;
  deps.discover_gpus = [] { return DiscoverGpus(); };
  deps.disk_space = StatDiskSpace;
  const bool tls_verify = options.tls_verify;
  const std::string ca_file = config->broker_ssl_ca_certs;
  deps.probe_broker = [tls_verify, ca_file](const BrokerAddress& address) -> Result<BrokerProbe> {
    AmqpClient client;
    CW_RETURN_IF_ERROR(
        client.Connect(address, ProbeConnectOptions(tls_verify, ca_file, "codabench-worker doctor")));
    BrokerProbe probe;
    auto queue = client.InspectQueue("compute-worker");
    if (queue.ok()) {
      probe.queue_exists = true;
      probe.messages = queue->messages;
      probe.consumers = queue->consumers;
    } else if (queue.status().code() != Code::kNotFound) {
      return queue.status();
    }
    client.Close();
    return probe;
  };

  DoctorOptions doctor;
  doctor.image = options.image;
  doctor.socket = config->container_socket;
  int failures = 0, warnings = 0;
  for (const DoctorCheck& check : RunDoctor(*config, doctor, deps)) {
    std::printf("%s\n", FormatCheck(check).c_str());
    std::fflush(stdout);
    failures += check.level == DoctorCheck::Level::kFail;
    warnings += check.level == DoctorCheck::Level::kWarn;
  }
  if (failures == 0) {
    std::printf("ready to serve%s\n",
                warnings ? (" (" + std::to_string(warnings) + " warning(s) above)").c_str() : "");
    return 0;
  }
  std::printf("%d problem(s) to fix before this worker can serve\n", failures);
  return 1;
}

}  // namespace cw
