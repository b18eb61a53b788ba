#!/usr/bin/env bash
# Prints the URL of a new, empty vhost (cw-test-<random>, guest may use it) on
# the local RabbitMQ, for the broker integration tests:
#
#   RABBITMQ_NODENAME=rabbit@localhost rabbitmq-server -detached
#   rabbitmqctl -n rabbit@localhost await_startup
#   export CW_TEST_BROKER_URL=$(tests/broker/fresh_vhost.sh)
#   ctest -L integration -R broker
#
# Remove old ones with: rabbitmqctl -n rabbit@localhost delete_vhost cw-test-...
set -euo pipefail
node="${RABBITMQ_NODENAME:-rabbit@localhost}"
port="${RABBITMQ_NODE_PORT:-5672}"
vhost="cw-test-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
rabbitmqctl -n "$node" -q add_vhost "$vhost" >/dev/null
rabbitmqctl -n "$node" -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
echo "amqp://guest:guest@localhost:${port}/${vhost}"
