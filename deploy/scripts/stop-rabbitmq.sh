#!/usr/bin/env bash
# Stop the node started by start-rabbitmq.sh (rabbit@localhost, or LIAISON_RABBITMQ_NODE) and its epmd, cleanly.
#
# Asks the node to stop (rabbitmqctl stop waits until the VM has exited); when the CLI
# cannot reach it, TERMs its VM - the pid from the pid file, or, when a failed start left
# no pid file, the VM whose environment names this node - and waits (bounded) for it to
# exit, then KILLs it. Succeeds when nothing of this node is running.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=rabbitmq-node.sh
. "$SCRIPTS/rabbitmq-node.sh"
TIMEOUT=${RABBITMQ_STOP_TIMEOUT:-60}

[ "$(id -u)" = 0 ] || { echo "stop-rabbitmq: run as root" >&2; exit 1; }

pid=""
[ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE")

if ping_node; then
    echo "stop-rabbitmq: stopping $NODE"
    if [ -n "$pid" ]; then
        rabbitmqctl -q -n "$NODE" stop "$PID_FILE" || true
    else
        rabbitmqctl -q -n "$NODE" stop || true
    fi
fi

# Whatever is left of this node's VM: TERM, wait (bounded), then KILL.
pids=$( { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"; node_pids; } | sort -u)
if [ -n "$pids" ]; then
    echo "stop-rabbitmq: sending TERM to" $pids
    kill -TERM $pids 2>/dev/null || true
    deadline=$((SECONDS + TIMEOUT))
    while alive=$(for p in $pids; do kill -0 "$p" 2>/dev/null && echo "$p"; done) && [ -n "$alive" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "stop-rabbitmq: $alive still running after ${TIMEOUT} s: sending KILL" >&2
            kill -KILL $alive 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
fi
rm -f "$PID_FILE"

# epmd outlives the node; stop it only when no other Erlang node is registered with it.
if command -v epmd >/dev/null && su rabbitmq -s /bin/sh -c "epmd -names" 2>/dev/null | grep -q "^name "; then
    echo "stop-rabbitmq: epmd still has registered nodes; leaving it running"
else
    su rabbitmq -s /bin/sh -c "epmd -kill" >/dev/null 2>&1 || true
fi
echo "stop-rabbitmq: $NODE stopped"
