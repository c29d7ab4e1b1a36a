# Sourced by start-rabbitmq.sh and stop-rabbitmq.sh: which node, on which ports, where its files are.
#
#   LIAISON_RABBITMQ_NODE       node name (default rabbit@localhost)
#   LIAISON_RABBITMQ_PORT       AMQP port on 127.0.0.1 (default 5672)
#   LIAISON_RABBITMQ_DIST_PORT  Erlang distribution port on 127.0.0.1 (default the AMQP port + 20000)
#   LIAISON_RABBITMQ_BASE       a directory the rabbitmq user owns, for this node's data (mnesia/) and
#                               logs (log/) instead of /var/lib/rabbitmq/mnesia and /var/log/rabbitmq
#                               (start-rabbitmq-cluster.sh gives each node of its cluster a fresh one)
#
# The node's settings are exported as RABBITMQ_* variables, which take precedence over
# /etc/rabbitmq/rabbitmq-env.conf (written for the default node) and which the node's
# process keeps in its environment: stop-rabbitmq.sh finds it by them when it has no pid file.
DEFAULT_NODE=rabbit@localhost
NODE=${LIAISON_RABBITMQ_NODE:-$DEFAULT_NODE}
PORT=${LIAISON_RABBITMQ_PORT:-5672}
DIST_PORT=${LIAISON_RABBITMQ_DIST_PORT:-$((PORT + 20000))}
ETC=/etc/rabbitmq
PID_FILE=/var/lib/rabbitmq/mnesia/${NODE}.pid
LOG_DIR=/var/log/rabbitmq
if [ -n "${LIAISON_RABBITMQ_BASE:-}" ]; then
    export RABBITMQ_MNESIA_BASE=$LIAISON_RABBITMQ_BASE/mnesia RABBITMQ_LOG_BASE=$LIAISON_RABBITMQ_BASE/log
    PID_FILE=$RABBITMQ_MNESIA_BASE/${NODE}.pid
    LOG_DIR=$RABBITMQ_LOG_BASE
fi

# epmd must listen on loopback only; rabbitmq-server starts it, and su keeps the environment.
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_NODENAME=$NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$PORT
export RABBITMQ_DIST_PORT=$DIST_PORT
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

ping_node() { rabbitmq-diagnostics -q -n "$NODE" ping >/dev/null 2>&1; }

# The pids of this node's Erlang VM, found by the RABBITMQ_NODENAME in its environment.
node_pids() {
    local dir
    for dir in /proc/[0-9]*; do
        [ "$(cat "$dir/comm" 2>/dev/null)" = beam.smp ] || continue
        if { tr '\0' '\n' <"$dir/environ"; } 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$NODE"; then
            echo "${dir#/proc/}"
        fi
    done
}
