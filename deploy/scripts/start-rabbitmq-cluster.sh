#!/usr/bin/env bash
# Start a three-node RabbitMQ cluster on this machine (loopback only), for the failover tests and trials.
#
#   liaison-a@localhost  amqp://guest:guest@127.0.0.1:5701/   distribution port 25701
#   liaison-b@localhost  amqp://guest:guest@127.0.0.1:5702/   distribution port 25702
#   liaison-c@localhost  amqp://guest:guest@127.0.0.1:5703/   distribution port 25703
#
# Each node is started by start-rabbitmq.sh (LIAISON_RABBITMQ_NODE / _PORT / _BASE) with its data and
# logs in its own fresh directory under one temporary directory owned by the rabbitmq user (recorded in
# /run/liaison-rabbitmq-cluster for stop-rabbitmq-cluster.sh, removed by it). All nodes run as the rabbitmq
# user, so they share its Erlang cookie. B and C are reset and joined to A (rabbitmqctl join_cluster);
# the definitions, imported on A, are the cluster's. Any other node on this machine (rabbit@localhost on
# 5672) is left alone.
#
# Idempotent: when the three nodes already run as one cluster, it only prints their URLs; when some of
# them were stopped or killed since it started them, it starts those again from their directories and
# they rejoin the others. When a first start fails, every node it started is stopped again (the trap is
# set before the first start); every wait is bounded (RABBITMQ_START_TIMEOUT, default 120 s per step).
# Needs root and the Debian rabbitmq-server.
#
#   deploy/scripts/start-rabbitmq-cluster.sh     # prints: LIAISON_AMQP_CLUSTER_URLS=amqp://...:5701/,...
#   deploy/scripts/stop-rabbitmq-cluster.sh
#   LIAISON_RABBITMQ_CLUSTER_PORT=5801 deploy/scripts/start-rabbitmq-cluster.sh   # AMQP ports 5801-5803
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=rabbitmq-cluster.sh
. "$SCRIPTS/rabbitmq-cluster.sh"
TIMEOUT=${RABBITMQ_START_TIMEOUT:-120}

fail() { echo "start-rabbitmq-cluster: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (the nodes run as the rabbitmq user)"
command -v rabbitmq-server >/dev/null || fail "rabbitmq-server is not installed: apt-get install -y rabbitmq-server"

# Start the nodes named by the letters side by side; each start-rabbitmq.sh waits (bounded) for its own
# node, and stops it again when it does not come up.
start_nodes() {
    local letter i=0 failed="" pids=()
    for letter in "$@"; do
        env LIAISON_RABBITMQ_NODE="$(node_name "$letter")" LIAISON_RABBITMQ_PORT="$(node_port "$letter")" \
            LIAISON_RABBITMQ_BASE="$BASE/$letter" RABBITMQ_START_TIMEOUT="$TIMEOUT" \
            "$SCRIPTS/start-rabbitmq.sh" >"$BASE/$letter/start.out" 2>&1 &
        pids+=($!)
    done
    for letter in "$@"; do
        wait "${pids[$i]}" || failed="$failed $letter"
        i=$((i + 1))
    done
    [ -z "$failed" ] && return 0
    for letter in $failed; do
        echo "----- start of $(node_name "$letter")" >&2
        cat "$BASE/$letter/start.out" >&2
    done
    fail "node(s)$failed did not start"
}

await_cluster() {
    local deadline=$((SECONDS + TIMEOUT))
    until [ "$(running_nodes "$FIRST")" = 3 ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "the cluster does not show 3 running nodes after ${TIMEOUT} s"
        sleep 0.5
    done
}

running=0            # nodes whose VM answers
stopped=""           # nodes whose VM does not
apps_stopped=""      # nodes whose VM answers but whose RabbitMQ application is stopped (rabbitmqctl stop_app)
for letter in $LETTERS; do
    if ! cluster_ping "$letter"; then
        stopped="$stopped $letter"
        continue
    fi
    running=$((running + 1))
    rabbitmq-diagnostics -q -n "$(node_name "$letter")" check_running >/dev/null 2>&1 || apps_stopped="$apps_stopped $letter"
done
if [ "$running" = 3 ] && [ -z "$apps_stopped" ] && [ "$(running_nodes "$FIRST")" = 3 ]; then
    echo "start-rabbitmq-cluster: the cluster already runs"
    echo "LIAISON_AMQP_CLUSTER_URLS=$(cluster_urls)"
    exit 0
fi
if [ "$running" -gt 0 ] && [ -s "$STATE_FILE" ] && [ -d "$(cat "$STATE_FILE")" ]; then
    # Nodes of this cluster stopped or killed since: started again from their own data, they rejoin.
    BASE=$(cat "$STATE_FILE")
    echo "start-rabbitmq-cluster: starting again$(for l in $stopped $apps_stopped; do printf ' %s' "$(node_name "$l")"; done)"
    # shellcheck disable=SC2086 # one letter per word
    [ -z "$stopped" ] || start_nodes $stopped
    for letter in $apps_stopped; do
        timeout "$TIMEOUT" rabbitmqctl -q -n "$(node_name "$letter")" start_app >/dev/null \
            || fail "rabbitmqctl -n $(node_name "$letter") start_app failed"
    done
    await_cluster
    echo "start-rabbitmq-cluster: 3 nodes running as one cluster after ${SECONDS} s"
    echo "LIAISON_AMQP_CLUSTER_URLS=$(cluster_urls)"
    exit 0
fi
[ "$running" = 0 ] || fail "$running of the 3 nodes already run, not as one cluster: run stop-rabbitmq-cluster.sh first"
for letter in $LETTERS; do
    for port in "$(node_port "$letter")" "$(($(node_port "$letter") + 20000))"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            fail "127.0.0.1:$port (for $(node_name "$letter")) is already in use"
        fi
    done
done
[ ! -s "$STATE_FILE" ] || fail "$STATE_FILE names $(cat "$STATE_FILE") from an earlier cluster: run stop-rabbitmq-cluster.sh first"

# From here on, a failure stops every node again and removes the directory.
cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "start-rabbitmq-cluster: stopping the cluster again after the failed start" >&2
        "$SCRIPTS/stop-rabbitmq-cluster.sh" >&2 || true
    fi
    exit "$status"
}
trap cleanup EXIT

BASE=$(mktemp -d /tmp/liaison-rabbitmq-cluster.XXXXXX)
echo "$BASE" >"$STATE_FILE"
chmod 0755 "$BASE"
for letter in $LETTERS; do
    mkdir -p "$BASE/$letter/mnesia" "$BASE/$letter/log"
done
chown -R rabbitmq:rabbitmq "$BASE"

echo "start-rabbitmq-cluster: starting $(for l in $LETTERS; do printf '%s ' "$(node_name "$l")"; done)in $BASE"
# shellcheck disable=SC2086 # one letter per word
start_nodes $LETTERS
echo "start-rabbitmq-cluster: 3 nodes booted after ${SECONDS} s; joining B and C to A"

# B and C join A: stopped, reset (a fresh node), joined, started again.
for letter in $LETTERS; do
    [ "$letter" = "$FIRST" ] && continue
    node=$(node_name "$letter")
    for step in stop_app reset "join_cluster $(node_name "$FIRST")" start_app; do
        # shellcheck disable=SC2086 # $step is a command and its argument
        timeout "$TIMEOUT" rabbitmqctl -q -n "$node" $step >>"$BASE/$letter/join.out" 2>&1 \
            || { tail -n 20 "$BASE/$letter/join.out" >&2; fail "rabbitmqctl -n $node $step failed (logs in $BASE/$letter/log)"; }
    done
done

await_cluster
# Quorum queues need their feature flag on every node (start-rabbitmq.sh enabled it before the join).
timeout "$TIMEOUT" rabbitmqctl -q -n "$(node_name "$FIRST")" enable_feature_flag all >/dev/null \
    || fail "cannot enable the feature flags on the cluster"

echo "start-rabbitmq-cluster: 3 nodes running as one cluster after ${SECONDS} s"
echo "LIAISON_AMQP_CLUSTER_URLS=$(cluster_urls)"
