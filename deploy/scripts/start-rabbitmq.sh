#!/usr/bin/env bash
# Start a loopback-only RabbitMQ node for development and CI, without systemd.
#
# The node is rabbit@localhost on 127.0.0.1:5672 (epmd and distribution on 127.0.0.1 too).
# Idempotent: when the node already answers a ping, only the feature flags and the
# definitions are (re)applied. Needs root and the Debian package rabbitmq-server.
# Exits non-zero, with the end of the node's logs, when the node does not come up in time.
#
#   deploy/scripts/start-rabbitmq.sh          # then: amqp://guest:guest@127.0.0.1:5672/
#   RABBITMQ_START_TIMEOUT=60 deploy/scripts/start-rabbitmq.sh
set -euo pipefail

NODE=rabbit@localhost
ETC=/etc/rabbitmq
PID_FILE=/var/lib/rabbitmq/mnesia/${NODE}.pid
LOG_DIR=/var/log/rabbitmq
TIMEOUT=${RABBITMQ_START_TIMEOUT:-120}
DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MARKER="managed by liaison"

# epmd must listen on loopback only; rabbitmq-server starts it, and su keeps the environment.
export ERL_EPMD_ADDRESS=127.0.0.1

fail() { echo "start-rabbitmq: $*" >&2; exit 1; }

show_logs() {
    for f in "$LOG_DIR/startup_err" "$LOG_DIR/startup_log" "$LOG_DIR/${NODE}.log"; do
        if [ -s "$f" ]; then
            echo "----- tail of $f" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

ping_node() { rabbitmq-diagnostics -q -n "$NODE" ping >/dev/null 2>&1; }

# Write $2 to $1 unless it already holds exactly that; never clobber a file someone else wrote.
install_file() {
    local target=$1 content=$2
    if [ -f "$target" ] && [ "$(cat "$target")" = "$content" ]; then
        return 0
    fi
    if [ -f "$target" ] && ! grep -q "$MARKER" "$target" && grep -qv '^[[:space:]]*\(#.*\)\?$' "$target"; then
        echo "start-rabbitmq: keeping $target (not written by Liaison)" >&2
        return 0
    fi
    printf '%s\n' "$content" >"$target"
    chown rabbitmq:rabbitmq "$target" 2>/dev/null || true
    CHANGED=1
}

[ "$(id -u)" = 0 ] || fail "run as root (the node runs as the rabbitmq user)"
command -v rabbitmq-server >/dev/null || fail "rabbitmq-server is not installed: apt-get install -y rabbitmq-server"
mkdir -p "$ETC"

CHANGED=0
install_file "$ETC/rabbitmq-env.conf" "# $MARKER: loopback-only node (deploy/scripts/start-rabbitmq.sh)
NODENAME=$NODE
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
SERVER_ADDITIONAL_ERL_ARGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"
ERL_EPMD_ADDRESS=127.0.0.1"
install_file "$ETC/rabbitmq.conf" "$(cat "$DEPLOY/rabbitmq/rabbitmq.conf")"
# For 'service rabbitmq-server start' (the SysV script reads this file).
if [ -f /etc/default/rabbitmq-server ] && ! grep -q '^export ERL_EPMD_ADDRESS=' /etc/default/rabbitmq-server; then
    echo 'export ERL_EPMD_ADDRESS=127.0.0.1' >>/etc/default/rabbitmq-server
fi

if ping_node; then
    echo "start-rabbitmq: $NODE already running"
    [ "$CHANGED" = 0 ] || echo "start-rabbitmq: configuration changed; restart the node to apply it" >&2
else
    echo "start-rabbitmq: starting $NODE"
    rabbitmq-server -detached || { show_logs; fail "rabbitmq-server -detached failed"; }
    # The pid file appears once the VM runs; 'wait' then blocks until the app has booted.
    deadline=$((SECONDS + 30))
    until [ -f "$PID_FILE" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { show_logs; fail "no pid file $PID_FILE after 30 s"; }
        sleep 0.2
    done
    if ! rabbitmqctl -q -n "$NODE" wait --timeout "$TIMEOUT" "$PID_FILE" >/dev/null; then
        show_logs
        fail "$NODE did not boot within ${TIMEOUT} s"
    fi
    ping_node || { show_logs; fail "$NODE booted but does not answer a ping"; }
fi

# Quorum queues need their feature flag (on by default on a fresh 3.10 node, not after an upgrade).
rabbitmqctl -q -n "$NODE" enable_feature_flag all >/dev/null || { show_logs; fail "cannot enable feature flags"; }
rabbitmqctl -q -n "$NODE" import_definitions "$DEPLOY/rabbitmq/definitions.json" >/dev/null \
    || fail "cannot import $DEPLOY/rabbitmq/definitions.json"

echo "start-rabbitmq: $NODE ready on amqp://guest:guest@127.0.0.1:5672/ (pid $(cat "$PID_FILE" 2>/dev/null || echo '?'))"
