#!/usr/bin/env bash
# Closes the broker connections whose client named itself NAME (our
# ConnectOptions.connection_name), as an admin or a broker restart would.
set -euo pipefail
name="$1"
node="${RABBITMQ_NODENAME:-rabbit@localhost}"
pids=$(rabbitmqctl -n "$node" -q list_connections --no-table-headers pid client_properties |
  grep -F "{\"connection_name\",\"${name}\"}" | cut -f1 || true)
if [[ -z "$pids" ]]; then
  echo "no connection named $name" >&2
  exit 1
fi
for pid in $pids; do
  rabbitmqctl -n "$node" -q close_connection "$pid" "closed by the broker integration test" >/dev/null
done
