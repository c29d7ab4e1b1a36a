#!/usr/bin/env bash
# Stop the node started by start-rabbitmq.sh (rabbit@localhost) and its epmd, cleanly.
#
# Asks the node to stop (rabbitmqctl stop waits until the VM has exited); when the CLI
# cannot reach it, TERMs the pid from the pid file and waits (bounded) for it to exit.
# Succeeds when nothing is running.
set -euo pipefail

NODE=rabbit@localhost
PID_FILE=/var/lib/rabbitmq/mnesia/${NODE}.pid
TIMEOUT=${RABBITMQ_STOP_TIMEOUT:-60}
export ERL_EPMD_ADDRESS=127.0.0.1

[ "$(id -u)" = 0 ] || { echo "stop-rabbitmq: run as root" >&2; exit 1; }

pid=""
[ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE")

if rabbitmq-diagnostics -q -n "$NODE" ping >/dev/null 2>&1; then
    echo "stop-rabbitmq: stopping $NODE"
    if [ -n "$pid" ]; then
        rabbitmqctl -q -n "$NODE" stop "$PID_FILE" || true
    else
        rabbitmqctl -q -n "$NODE" stop || true
    fi
fi

if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "stop-rabbitmq: sending TERM to $pid"
    kill -TERM "$pid"
    deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "stop-rabbitmq: $pid still running after ${TIMEOUT} s" >&2
            exit 1
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
