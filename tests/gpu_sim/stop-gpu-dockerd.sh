#!/usr/bin/env bash
# Stops what start-gpu-dockerd.sh DIR started, and unmounts everything under
# DIR, so that `rm -rf DIR` works. Idempotent; quick when nothing runs.
# Touches only processes of DIR: dockerd/containerd by their pidfiles, the
# containers by the cgroup parent of DIR, shims by DIR's containerd address.
set -uo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[[ -d "$1" ]] || exit 0
dir="$(cd "$1" && pwd)"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Waits up to $2 hundredths of a second for pid $1 to go. A zombie counts as
# gone: an orphan is reaped by pid 1, which may take its time.
wait_gone() {
  local i state
  for ((i = 0; i < $2; i++)); do
    state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)"
    [[ -z "$state" || "$state" == Z ]] && return 0
    sleep 0.01
  done
  return 1
}
# Pids running EXE whose command line holds STRING (a path under DIR).
pids_of() {  # string exe
  local f p
  for f in $(grep -lsaF -e "$1" /proc/[0-9]*/cmdline); do
    p="${f#/proc/}"
    p="${p%/cmdline}"
    [[ "$(readlink "/proc/$p/exe" 2>/dev/null)" == "$2" ]] && echo "$p"
  done
}
# Stops the process of PIDFILE and any other EXE started with STRING in its
# command line (an orphan whose pidfile is gone): TERM, 15 s, KILL.
stop_daemon() {  # pidfile exe string
  local pid pids
  pids="$(live_pid "$1" "$2"; pids_of "$3" "$2")"
  for pid in $(echo "$pids" | sort -u); do kill -TERM "$pid" 2>/dev/null; done
  for pid in $(echo "$pids" | sort -u); do
    wait_gone "$pid" 1500 || { kill -KILL "$pid" 2>/dev/null; wait_gone "$pid" 500; }
  done
}
# Kills every process in the cgroup subtree $1 (all v1 hierarchies).
kill_cgroup() {
  local parent="$1" d pid
  [[ "$parent" =~ ^/cw-gpu-sim-[0-9]+$ ]] || return 0
  for d in /sys/fs/cgroup/*"$parent"; do
    [[ -d "$d" ]] || continue
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null
    done
  done
}
rm_cgroup() {
  local parent="$1" d
  [[ "$parent" =~ ^/cw-gpu-sim-[0-9]+$ ]] || return 0
  for d in /sys/fs/cgroup/*"$parent"; do
    [[ -d "$d" ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
}

cgroup_parent="$(cat "$dir/cgroup-parent" 2>/dev/null)"
# Containers first: then dockerd has nothing to wait for when it shuts down.
kill_cgroup "$cgroup_parent"
stop_daemon "$dir/docker.pid" "$(readlink -f "$(command -v dockerd)")" "$dir/docker.pid"
stop_daemon "$dir/ctd/containerd.pid" "$(readlink -f "$(command -v containerd)")" "$dir/ctd/config.toml"
# Shims of DIR's containerd (they outlive it when it is killed).
ctd_sock="$dir/ctd/ctd.sock"
for f in $(grep -lsaF -e "$ctd_sock" /proc/[0-9]*/cmdline); do
  cmd="$({ tr '\0' ' ' <"$f"; } 2>/dev/null)" || continue
  p="${f#/proc/}"
  [[ "$cmd" == *containerd-shim*" -address $ctd_sock "* ]] && kill -KILL "${p%/cmdline}" 2>/dev/null
done
kill_cgroup "$cgroup_parent"
rm_cgroup "$cgroup_parent"

# Unmount everything under DIR, deepest first (overlay rootfs, netns, shm...).
for _ in 1 2 3; do
  mapfile -t mounts < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  [[ ${#mounts[@]} -eq 0 ]] && break
  for m in "${mounts[@]}"; do
    m="$(printf '%b' "$m")"   # mountinfo escapes spaces as \040
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
done
# The bridge start made for this daemon (never docker0).
if [[ -f "$dir/bridge" ]]; then
  bridge="$(cat "$dir/bridge")"
  [[ "$bridge" == cwgpu* ]] && ip link del "$bridge" 2>/dev/null
fi
rm -f "$dir/docker.pid" "$dir/ctd/containerd.pid" "$dir/docker.sock"
exit 0
