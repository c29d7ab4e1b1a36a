#!/usr/bin/env bash
# Start a loopback-only RabbitMQ node for development and CI, without systemd.
#
# The node is rabbit@localhost on 127.0.0.1:5672 (epmd and distribution on 127.0.0.1 too).
# Idempotent: when the node already answers a ping, only the feature flags and the
# definitions are (re)applied. Needs root and the Debian package rabbitmq-server.
# Exits non-zero, with the end of the node's logs, when the node does not come up in time;
# a node this script launched and that then failed is stopped again: a failed start leaves
# nothing running.
#
# Works from a clone anywhere (a `mktemp -d` directory, /root, a 0750 home): the node runs as
# the rabbitmq user, who may not be able to enter the clone, so it is given nothing to read
# there (the definitions go to rabbitmqctl on its standard input, the configuration is copied
# to /etc/rabbitmq).
#
#   deploy/scripts/start-rabbitmq.sh          # then: amqp://guest:guest@127.0.0.1:5672/
#   RABBITMQ_START_TIMEOUT=60 deploy/scripts/start-rabbitmq.sh
#
# A second node beside the first (e.g. to try this script while another broker runs):
#   LIAISON_RABBITMQ_NODE=liaison-check@localhost LIAISON_RABBITMQ_PORT=5700 deploy/scripts/start-rabbitmq.sh
#   LIAISON_RABBITMQ_NODE=liaison-check@localhost LIAISON_RABBITMQ_PORT=5700 deploy/scripts/stop-rabbitmq.sh
# Such a node keeps its data and logs under its own name (/var/lib/rabbitmq/mnesia/<node>,
# /var/log/rabbitmq/<node>.log), its distribution port is LIAISON_RABBITMQ_DIST_PORT (default
# the AMQP port + 20000), and /etc/rabbitmq/rabbitmq-env.conf, which names the default node,
# is left alone.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=rabbitmq-node.sh
. "$SCRIPTS/rabbitmq-node.sh"
TIMEOUT=${RABBITMQ_START_TIMEOUT:-120}
DEPLOY=$(cd "$SCRIPTS/.." && pwd)
MARKER="managed by liaison"

fail() { echo "start-rabbitmq: $*" >&2; exit 1; }

show_logs() {
    for f in "$LOG_DIR/startup_err" "$LOG_DIR/startup_log" "$LOG_DIR/${NODE}.log"; do
        if [ -s "$f" ]; then
            echo "----- tail of $f" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

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
if [ "$NODE" = "$DEFAULT_NODE" ]; then
    install_file "$ETC/rabbitmq-env.conf" "# $MARKER: loopback-only node (deploy/scripts/start-rabbitmq.sh)
NODENAME=$NODE
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=$PORT
SERVER_ADDITIONAL_ERL_ARGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"
ERL_EPMD_ADDRESS=127.0.0.1"
fi
install_file "$ETC/rabbitmq.conf" "$(cat "$DEPLOY/rabbitmq/rabbitmq.conf")"
# For 'service rabbitmq-server start' (the SysV script reads this file).
if [ -f /etc/default/rabbitmq-server ] && ! grep -q '^export ERL_EPMD_ADDRESS=' /etc/default/rabbitmq-server; then
    echo 'export ERL_EPMD_ADDRESS=127.0.0.1' >>/etc/default/rabbitmq-server
fi

LAUNCHED=0
# A node this script launched is stopped again when anything below fails.
cleanup() {
    status=$?
    if [ "$status" -ne 0 ] && [ "$LAUNCHED" = 1 ]; then
        echo "start-rabbitmq: stopping $NODE again after the failed start" >&2
        "$SCRIPTS/stop-rabbitmq.sh" >&2 || true
    fi
    exit "$status"
}
trap cleanup EXIT

if ping_node; then
    echo "start-rabbitmq: $NODE already running"
    [ "$CHANGED" = 0 ] || echo "start-rabbitmq: configuration changed; restart the node to apply it" >&2
else
    echo "start-rabbitmq: starting $NODE on 127.0.0.1:$PORT"
    LAUNCHED=1
    # A pid file left by a node that was killed would be taken for the new one's.
    if [ -f "$PID_FILE" ] && ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then rm -f "$PID_FILE"; fi
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
# On standard input: rabbitmqctl runs as the rabbitmq user, who may not be allowed into this clone.
rabbitmqctl -q -n "$NODE" import_definitions <"$DEPLOY/rabbitmq/definitions.json" >/dev/null \
    || fail "cannot import $DEPLOY/rabbitmq/definitions.json"

echo "start-rabbitmq: $NODE ready on amqp://guest:guest@127.0.0.1:$PORT/ (pid $(cat "$PID_FILE" 2>/dev/null || echo '?'))"
