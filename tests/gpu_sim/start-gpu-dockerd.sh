#!/usr/bin/env bash
# Starts a second, isolated dockerd (and its own containerd) that accepts
# NVIDIA GPU device requests on a machine without GPUs, for tests.
#
#   sock=$(tests/gpu_sim/start-gpu-dockerd.sh DIR)   # -> unix://DIR/docker.sock
#   ...   docker -H "$sock" ...   /   CONTAINER_SOCKET="$sock"
#   tests/gpu_sim/stop-gpu-dockerd.sh DIR
#
# Everything lives under DIR: data/ (data-root), exec/ (exec-root), ctd/
# (containerd), docker.sock, docker.pid, dockerd.log, containerd.log and
# hook.jsonl (one line per GPU container start, written by
# bin/nvidia-container-runtime-hook). Needs root. Idempotent: a daemon already
# answering on DIR/docker.sock is reused. The caller's CW_GPU_SIM_* variables
# (COUNT, STRICT) reach the hook through dockerd's environment.
# The default bridge network is a bridge of its own (cwgpuNNNNN, created here,
# removed by stop), without NAT: containers reach each other, not the outside.
# Startup takes about 0.5 s.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
sock="$dir/docker.sock"
ctd_sock="$dir/ctd/ctd.sock"
# A unix socket path has at most 107 bytes; the longest one here is
# dockerd's DIR/exec/libnetwork/<12 hex>.sock.
if (( ${#dir} + 34 > 107 )); then
  echo "$0: DIR must have at most 73 characters (unix socket paths): $dir" >&2
  exit 1
fi

ping() {
  curl -sf --max-time 2 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if live_pid "$dir/docker.pid" "$(readlink -f "$(command -v dockerd)")" >/dev/null && ping; then
  echo "unix://$sock"
  exit 0
fi
# Leftovers of an earlier run (crash, kill -9): clear them first.
"$here/stop-gpu-dockerd.sh" "$dir" >/dev/null

if [[ "$(id -u)" != 0 ]]; then
  echo "$0: needs root" >&2
  exit 1
fi

fail() {
  echo "$0: $1; last lines of $dir/dockerd.log and containerd.log:" >&2
  tail -n 20 "$dir/dockerd.log" >&2 2>/dev/null || true
  tail -n 10 "$dir/containerd.log" >&2 2>/dev/null || true
  "$here/stop-gpu-dockerd.sh" "$dir" >/dev/null 2>&1 || true
  exit 1
}

mkdir -p "$dir/data" "$dir/exec" "$dir/ctd/root" "$dir/ctd/state" "$dir/ctd/opt"
: >"$dir/dockerd.log"
: >"$dir/containerd.log"
touch "$dir/hook.jsonl"
echo '{}' >"$dir/daemon.json"   # not /etc/docker/daemon.json
# One cgroup parent per DIR: apart from the main daemon's /docker, and from
# other simulated daemons.
sum="$(printf %s "$dir" | cksum | cut -d' ' -f1)"
cgroup_parent="/cw-gpu-sim-$sum"
echo "$cgroup_parent" >"$dir/cgroup-parent"
# Its own bridge. Not --bridge=none: with that, dockerd deletes the host's
# docker0 at start (removeDefaultBridgeInterface), breaking the main daemon.
# A bridge named with -b must exist before dockerd starts.
bridge="cwgpu$((sum % 100000))"
echo "$bridge" >"$dir/bridge"
ip link add name "$bridge" type bridge 2>/dev/null || true
ip addr replace "10.213.$((sum % 250)).1/24" dev "$bridge"
ip link set "$bridge" up
cat >"$dir/ctd/config.toml" <<TOML
version = 2
root = "$dir/ctd/root"
state = "$dir/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctd_sock"
[ttrpc]
  address = "$ctd_sock.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/ctd/opt"
TOML

# The hook must be on dockerd's PATH when it starts; it runs with dockerd's env.
export PATH="$here/bin:$PATH"
export CW_GPU_SIM_RECORD="$dir/hook.jsonl"
unset DOCKER_HOST NOTIFY_SOCKET

t0=$(date +%s%N)
# setsid: not in the caller's session (no SIGINT/SIGHUP from it); all fds
# redirected so that $(start-gpu-dockerd.sh ...) returns.
setsid containerd --config "$dir/ctd/config.toml" </dev/null >>"$dir/containerd.log" 2>&1 &
echo $! >"$dir/ctd/containerd.pid"
for _ in $(seq 200); do
  [[ -S "$ctd_sock" ]] && break
  kill -0 "$(cat "$dir/ctd/containerd.pid")" 2>/dev/null || fail "containerd exited"
  sleep 0.05
done
[[ -S "$ctd_sock" ]] || fail "containerd did not start in 10 s"

setsid dockerd \
  --config-file "$dir/daemon.json" \
  --data-root "$dir/data" \
  --exec-root "$dir/exec" \
  --pidfile "$dir/docker.pid" \
  --host "unix://$sock" \
  --containerd "$ctd_sock" \
  --containerd-namespace cw-gpu-sim \
  --containerd-plugins-namespace cw-gpu-sim-plugins \
  --cgroup-parent "$cgroup_parent" \
  --bridge="$bridge" --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
  --userland-proxy=false \
  </dev/null >>"$dir/dockerd.log" 2>&1 &
dockerd_pid=$!

for _ in $(seq 300); do   # 30 s
  if ping; then
    t1=$(date +%s%N)
    echo "started in $(( (t1 - t0) / 1000000 )) ms (dockerd pid $dockerd_pid)" >>"$dir/dockerd.log"
    echo "unix://$sock"
    exit 0
  fi
  kill -0 "$dockerd_pid" 2>/dev/null || fail "dockerd exited"
  sleep 0.1
done
fail "dockerd did not answer on $sock within 30 s"
