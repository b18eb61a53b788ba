// What an earlier run of this node name left behind (a crash, a SIGKILL):
// its containers would hold GPUs and disk forever, its job folders gigabytes.
// They go at start, before any job of ours runs, but only when no live
// worker uses the same name: the default, compute-worker@<hostname>, is
// shared by two workers on one host, and a live one's running jobs carry the
// same labels.
//
// Threads: plain functions, called at start-up on the main thread.
#pragma once

#include <string>

#include "broker/broker_url.h"
#include "engine/engine.h"
#include "job/job_runner.h"

namespace cw {

// True when no live worker listens as `nodename` (its Celery mailbox queue
// has no consumer). When the broker cannot tell, false: sweeping a live
// worker's containers would kill its jobs, leaving leftovers only costs disk
// until the next start.
bool NoOtherLiveNode(const BrokerAddress& address, const std::string& nodename, bool tls_verify,
                     const std::string& ca_file);

// Removes the containers labelled with `nodename`: the jobs' first, then the
// slots' network holders they joined.
void RemoveOrphanContainers(ContainerEngine& engine, const std::string& nodename);

// Removes the job folders left under JobsFolder(env), unless the admin keeps
// job folders (CODALAB_IGNORE_CLEANUP_STEP); what the worker's user cannot
// remove (programs ran as root) goes through the worker's own image in
// `engine` (env.sandbox_image: call after PrepareEngine). Returns how many went.
int RemoveOrphanJobFolders(const JobEnvironment& env, ContainerEngine& engine,
                           const std::string& nodename);

}  // namespace cw
