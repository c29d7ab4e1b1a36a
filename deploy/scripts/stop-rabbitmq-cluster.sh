#!/usr/bin/env bash
# Stop the three nodes started by start-rabbitmq-cluster.sh and remove their temporary directory.
#
# Each node is stopped by stop-rabbitmq.sh (rabbitmqctl stop, else TERM then KILL its VM, bounded);
# a node with no directory left (a failed start) is still found by its name. Any other node on this
# machine is left alone, and so is epmd while it has nodes registered. Succeeds when nothing of the
# cluster is running.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=rabbitmq-cluster.sh
. "$SCRIPTS/rabbitmq-cluster.sh"

[ "$(id -u)" = 0 ] || { echo "stop-rabbitmq-cluster: run as root" >&2; exit 1; }

BASE=""
[ -s "$STATE_FILE" ] && BASE=$(cat "$STATE_FILE")
status=0
for letter in c b a; do
    env LIAISON_RABBITMQ_NODE="$(node_name "$letter")" LIAISON_RABBITMQ_PORT="$(node_port "$letter")" \
        LIAISON_RABBITMQ_BASE="${BASE:+$BASE/$letter}" "$SCRIPTS/stop-rabbitmq.sh" || status=1
done
if [ "$status" = 0 ]; then
    case $BASE in
        /tmp/liaison-rabbitmq-cluster.*) rm -rf "$BASE" ;;
    esac
    rm -f "$STATE_FILE"
    echo "stop-rabbitmq-cluster: stopped"
fi
exit "$status"
