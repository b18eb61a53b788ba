#include "worker/startup_sweep.h"

#include <spdlog/spdlog.h>

#include "broker/amqp_client.h"
#include "broker/consumer.h"
#include "job/network_holders.h"

namespace cw {

bool NoOtherLiveNode(const BrokerAddress& address, const std::string& nodename, bool tls_verify,
                     const std::string& ca_file) {
  AmqpClient client;
  Status connected = client.Connect(
      address, ProbeConnectOptions(tls_verify, ca_file, "codabench-worker start-up check"));
  if (!connected.ok()) {
    spdlog::warn(
        "leftovers of an earlier run of {} are not removed this time: cannot ask the "
        "broker whether another worker uses that name ({})",
        nodename, connected.message());
    return false;
  }
  auto mailbox = client.InspectQueue(nodename + ".celery.pidbox");
  client.Close();
  if (!mailbox.ok()) {
    if (mailbox.status().code() == Code::kNotFound) return true;
    spdlog::warn("leftovers of an earlier run of {} are not removed this time: {}", nodename,
                 mailbox.status().message());
    return false;
  }
  if (mailbox->consumers > 0) {
    spdlog::warn(
        "another worker already runs as {}: its containers and job folders are left "
        "alone; give each worker its own --nodename",
        nodename);
    return false;
  }
  return true;
}

void RemoveOrphanContainers(ContainerEngine& engine, const std::string& nodename) {
  auto ids = engine.ListByLabel("org.codabench.node", nodename);
  if (!ids.ok()) {
    spdlog::warn("could not list leftover containers: {}", ids.status().message());
    return;
  }
  // The slots' network holders, after the job containers that joined them.
  auto holders = engine.ListByLabel(kLabelHolderNode, nodename);
  if (holders.ok()) ids->insert(ids->end(), holders->begin(), holders->end());
  for (const auto& id : *ids) {
    spdlog::warn("removing container {} left by an earlier run of {}", id.substr(0, 12), nodename);
    (void)engine.Remove(id, true);
  }
}

int RemoveOrphanJobFolders(const JobEnvironment& env, ContainerEngine& engine,
                           const std::string& nodename) {
  if (env.keep_job_dir) return 0;
  const int left = RemoveLeftoverJobFolders(env, SandboxFor(env, engine));
  if (left > 0) {
    spdlog::warn("removed {} job folder(s) an earlier run of {} left in {}", left, nodename,
                 JobsFolder(env).string());
  }
  return left;
}

}  // namespace cw
