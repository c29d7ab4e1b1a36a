# Sourced by start-rabbitmq-cluster.sh and stop-rabbitmq-cluster.sh: the cluster's nodes and ports.
#
#   LIAISON_RABBITMQ_CLUSTER_PORT  AMQP port of node A (default 5701); B and C take the next two.
#                                  Distribution ports: the AMQP port + 20000 (rabbitmq-node.sh).
#   LIAISON_RABBITMQ_CLUSTER_NAME  the nodes' name prefix (default liaison: liaison-a@localhost ...); a
#                                  second cluster beside the first needs its own name and port, e.g.
#                                  liaison-faults on 5801 (the fault suite's, which it kills at will).
LETTERS="a b c"
FIRST=a
CLUSTER_PORT=${LIAISON_RABBITMQ_CLUSTER_PORT:-5701}
CLUSTER_NAME=${LIAISON_RABBITMQ_CLUSTER_NAME:-liaison}
STATE_FILE=/run/${CLUSTER_NAME}-rabbitmq-cluster   # the cluster's temporary directory, while it exists

export ERL_EPMD_ADDRESS=127.0.0.1

node_name() { echo "$CLUSTER_NAME-$1@localhost"; }

node_port() {
    case $1 in
        a) echo "$CLUSTER_PORT" ;;
        b) echo $((CLUSTER_PORT + 1)) ;;
        c) echo $((CLUSTER_PORT + 2)) ;;
    esac
}

cluster_ping() { rabbitmq-diagnostics -q -n "$(node_name "$1")" ping >/dev/null 2>&1; }

# How many nodes the cluster, seen from node $1, has running (0 when it does not answer).
running_nodes() {
    timeout 30 rabbitmqctl -q -n "$(node_name "$1")" eval 'length(rabbit_nodes:all_running()).' 2>/dev/null || echo 0
}

cluster_urls() {
    local letter urls=""
    for letter in $LETTERS; do
        urls="$urls${urls:+,}amqp://guest:guest@127.0.0.1:$(node_port "$letter")/"
    done
    echo "$urls"
}
