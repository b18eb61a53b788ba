# Shared by start-gpu-dockerd.sh and stop-gpu-dockerd.sh (sourced).

# The pid in FILE ($1), if that process is alive and runs EXE ($2).
live_pid() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$2" ]] || return 1
  echo "$pid"
}
