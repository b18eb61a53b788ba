#!/usr/bin/env bash
# Measures run-local: wall time split into stages, and the worker's peak
# memory, for (1) the example competition and (2) a submission that prints
# FLOOD_MB of output in a burst. Prints one line per measurement.
# Usage: bench/run_local_bench.sh [BINARY]   (needs the images of scripts/test)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/src/cli/codabench-worker}
FLOOD_MB=${FLOOD_MB:-200}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

peak_rss() { awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2 " KiB"}' "$1"; }
stages() { grep -o '[a-z]* timings: .*' "$1" || true; }

echo "== example competition (python image)"
/usr/bin/time -v "$BIN" run-local examples/competition examples/submission \
  --image codabench-worker/python:bookworm --pull missing --out "$tmp/example" \
  >"$tmp/example.out" 2>"$tmp/example.err"
stages "$tmp/example.err"
echo "peak RSS: $(peak_rss "$tmp/example.err")"

echo "== ${FLOOD_MB} MiB of output in a burst (busybox image)"
b="$tmp/flood-bundle"
mkdir -p "$b/scoring_program" "$tmp/flood-sub"
cat >"$b/competition.yaml" <<YAML
version: 2
title: flood
docker_image: codabench-worker-test/busybox:latest
tasks:
  - {index: 0, name: t, scoring_program: scoring_program/}
phases:
  - {index: 0, name: Dev, execution_time_limit: 600, tasks: [0]}
leaderboards:
  - {index: 0, title: R, key: R, columns: [{title: S, key: score, index: 0}]}
YAML
printf 'command: |-\n  echo "score: 1" > /app/output/scores.txt\n' >"$b/scoring_program/metadata.yaml"
printf 'command: |-\n  yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c %d\n' \
  $((FLOOD_MB * 1024 * 1024)) >"$tmp/flood-sub/metadata.yaml"
/usr/bin/time -v "$BIN" run-local "$b" "$tmp/flood-sub" --pull missing --out "$tmp/flood" \
  >/dev/null 2>"$tmp/flood.err"
stages "$tmp/flood.err"
echo "peak RSS: $(peak_rss "$tmp/flood.err")"
echo "stdout log kept: $(stat -c %s "$tmp/flood/prediction/logs/stdout.txt") bytes"
