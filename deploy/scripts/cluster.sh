#!/usr/bin/env bash
# Liaison's multi-server deployment on one machine, for trials: PostgreSQL + 3 RabbitMQ nodes +
# 2 listeners + 3 workers + a Postfix relay (STARTTLS, client certificate required, Maildir).
#
#   deploy/scripts/cluster.sh start DIR     # everything under DIR (new or empty, under /tmp: PostgreSQL
#                                           # runs as the postgres user and must reach it); prints the ports
#   deploy/scripts/cluster.sh status DIR    # what runs, what does not
#   deploy/scripts/cluster.sh stop DIR      # stops everything it started and deletes DIR
#
# As root (RabbitMQ, PostgreSQL and Postfix run as their own users); from a clone where
# deploy/scripts/test.sh (or pip install -e .) made .venv. Listeners on 127.0.0.1:2575 and 2576
# (LIAISON_CLUSTER_MLLP_PORT), RabbitMQ liaison-trial-{a,b,c}@localhost on 5901-5903
# (LIAISON_RABBITMQ_CLUSTER_PORT, _NAME), PostgreSQL and Postfix on free ports. Each listener and
# worker is `liaison run --ingest-only` / `liaison worker` from its own file in DIR/etc, logs in
# DIR/logs, pids in DIR/run. The journal is encrypted (DIR/etc/journal.key). Mail lands in the
# Postfix Maildir (printed); ZAMs are not sent ([acks] left out: add one to try them).
# The fault suite (tests/faults) runs the same deployment from Python, with its own nodes on 5801-5803.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPTS/../.." && pwd)
PYTHON=${LIAISON_PYTHON:-$ROOT/.venv/bin/python}
export LIAISON_RABBITMQ_CLUSTER_NAME=${LIAISON_RABBITMQ_CLUSTER_NAME:-liaison-trial}
export LIAISON_RABBITMQ_CLUSTER_PORT=${LIAISON_RABBITMQ_CLUSTER_PORT:-5901}
MLLP_PORT=${LIAISON_CLUSTER_MLLP_PORT:-2575}
LISTENERS="listener-1 listener-2"
WORKERS="worker-1 worker-2 worker-3"

fail() { echo "cluster: $*" >&2; exit 1; }
usage() { fail "usage: $0 start|stop|status DIR"; }

[ $# -eq 2 ] || usage
command=$1
dir=$2
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
[ "$(id -u)" = 0 ] || fail "run as root (RabbitMQ, PostgreSQL and Postfix run as their own users)"

rabbit_urls() {
    local port=$LIAISON_RABBITMQ_CLUSTER_PORT first=$1 urls="" i n
    for i in 0 1 2; do
        n=$(( (first + i) % 3 ))
        urls="$urls${urls:+, }\"amqp://guest:guest@127.0.0.1:$((port + n))/\""
    done
    echo "[$urls]"
}

write_config() {   # NAME INDEX MLLP_PORT
    local name=$1 index=$2 port=$3
    . "$dir/etc/postfix.env"
    cat >"$dir/etc/$name.toml" <<TOML
# Written by deploy/scripts/cluster.sh for a trial on one machine.
[engine]
bus = $(rabbit_urls "$index")
journal = "$(cat "$dir/postgres/url")"
journal_key_file = "$dir/etc/journal.key"
cda_schema_required = false
retry_delays = [1, 5, 30, 120, 600]

[[listeners]]
name = "his"
host = "127.0.0.1"
port = $port

[mss]
relay = "smtp://127.0.0.1:$POSTFIX_PORT?pool=4"
sender = "pfi@hopital-test.mssante.fr"
client_cert = "$POSTFIX_CLIENT_CERT"
client_key = "$POSTFIX_CLIENT_KEY"
ca_file = "$POSTFIX_CA"
nil = "TEST-NIL-0001"
message_id_domain = "hopital-test.mssante.fr"
TOML
    chmod 0600 "$dir/etc/$name.toml"
}

start_engine() {   # NAME VERB...
    local name=$1; shift
    # setsid: its own session, out of this script's terminal; $! is the engine's own pid (setsid execs it).
    ( cd "$ROOT" || exit 1
      PYTHONPATH="$ROOT" setsid "$PYTHON" -m channels.app.cli.main "$@" -c "$dir/etc/$name.toml" \
          </dev/null >>"$dir/logs/$name.log" 2>&1 &
      echo $! >"$dir/run/$name.pid" )
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() {      # PORT SECONDS NAME
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        alive "$dir/run/$3.pid" || { tail -n 30 "$dir/logs/$3.log" >&2; fail "$3 exited"; }
        [ "$SECONDS" -lt "$deadline" ] || fail "$3 does not listen on $1 after $2 s"
        sleep 0.2
    done
}

do_start() {
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || fail "$dir is not empty"
    chmod 0755 "$dir"
    touch "$dir/.liaison-cluster"        # stop deletes only a folder that holds this mark
    mkdir -p "$dir/etc" "$dir/logs" "$dir/run"
    # From here on a failed start stops what it started.
    trap 'status=$?; [ $status -eq 0 ] || { echo "cluster: start failed, stopping what started" >&2; do_stop || true; }' EXIT
    echo "== RabbitMQ: $LIAISON_RABBITMQ_CLUSTER_NAME-{a,b,c}@localhost on $LIAISON_RABBITMQ_CLUSTER_PORT-$((LIAISON_RABBITMQ_CLUSTER_PORT + 2)) (in the background)"
    "$SCRIPTS/start-rabbitmq-cluster.sh" >"$dir/logs/rabbitmq.log" 2>&1 &
    local rabbit=$!
    echo "== PostgreSQL"
    "$SCRIPTS/start-postgres.sh" "$dir/postgres" >"$dir/logs/postgres-start.log" 2>&1 \
        || { cat "$dir/logs/postgres-start.log" >&2; fail "PostgreSQL did not start"; }
    echo "== Postfix"
    (cd "$ROOT" && PYTHONPATH="$ROOT" "$PYTHON" - "$dir/etc/postfix.env" <<'PY'
import sys
from tests.support.postfix import start_postfix
instance = start_postfix(keep=True)
with open(sys.argv[1], "w") as out:
    out.write(f"POSTFIX_ROOT={instance.root}\nPOSTFIX_PORT={instance.port}\nPOSTFIX_CLIENT_CERT={instance.pki.client_cert}\n"
              f"POSTFIX_CLIENT_KEY={instance.pki.client_key}\nPOSTFIX_CA={instance.pki.ca_cert}\n"
              f"POSTFIX_MAILDIR={instance.maildir}\n")
PY
    ) || fail "Postfix did not start"
    head -c 32 /dev/urandom | base64 >"$dir/etc/journal.key"
    chmod 0600 "$dir/etc/journal.key"
    wait "$rabbit" || { cat "$dir/logs/rabbitmq.log" >&2; fail "the RabbitMQ cluster did not start"; }
    local index=0 name port=$MLLP_PORT
    for name in $LISTENERS $WORKERS; do
        case $name in listener-*) write_config "$name" "$index" "$port"; port=$((port + 1)) ;;
                      *) write_config "$name" "$index" 0 ;; esac
        index=$((index + 1))
    done
    echo "== listeners and workers"
    port=$MLLP_PORT
    for name in $LISTENERS; do           # one after the other: the first migrates the journal's schema
        start_engine "$name" run --ingest-only
        wait_port "$port" 120 "$name"
        port=$((port + 1))
    done
    for name in $WORKERS; do
        start_engine "$name" worker
    done
    trap - EXIT
    . "$dir/etc/postfix.env"
    echo "cluster: up in ${SECONDS} s"
    echo "  MLLP      127.0.0.1:$MLLP_PORT, 127.0.0.1:$((MLLP_PORT + 1))"
    echo "  RabbitMQ  $(rabbit_urls 0)"
    echo "  journal   $(sed 's#://\([^:]*\):[^@]*@#://\1:***@#' "$dir/postgres/url")"
    echo "  mail      Postfix on 127.0.0.1:$POSTFIX_PORT, Maildir $POSTFIX_MAILDIR"
    echo "  logs      $dir/logs"
}

do_status() {
    local name state=0
    for name in $LISTENERS $WORKERS; do
        if alive "$dir/run/$name.pid"; then echo "$name: running (pid $(cat "$dir/run/$name.pid"))"
        else echo "$name: not running"; state=1; fi
    done
    if [ -f "$dir/postgres/data/postmaster.pid" ] && kill -0 "$(head -n1 "$dir/postgres/data/postmaster.pid")" 2>/dev/null
    then echo "postgresql: running"; else echo "postgresql: not running"; state=1; fi
    . "$SCRIPTS/rabbitmq-cluster.sh"
    echo "rabbitmq: $(running_nodes a) of 3 nodes running (seen from $(node_name a))"
    if [ -f "$dir/etc/postfix.env" ]; then
        . "$dir/etc/postfix.env"
        if (exec 3<>"/dev/tcp/127.0.0.1/$POSTFIX_PORT") 2>/dev/null; then echo "postfix: running on $POSTFIX_PORT"
        else echo "postfix: not running"; state=1; fi
    fi
    return $state
}

do_stop() {
    local name pid deadline
    for name in $LISTENERS $WORKERS; do
        alive "$dir/run/$name.pid" && kill -TERM "$(cat "$dir/run/$name.pid")" 2>/dev/null || true
    done
    for name in $LISTENERS $WORKERS; do
        deadline=$((SECONDS + 30))
        while alive "$dir/run/$name.pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        alive "$dir/run/$name.pid" && kill -KILL "$(cat "$dir/run/$name.pid")" 2>/dev/null || true
    done
    if [ -f "$dir/etc/postfix.env" ]; then
        . "$dir/etc/postfix.env"
        (cd "$ROOT" && PYTHONPATH="$ROOT" "$PYTHON" -c "
from pathlib import Path
from tests.support.postfix import PostfixInstance
PostfixInstance(Path('$POSTFIX_ROOT'), $POSTFIX_PORT, None).stop()") || echo "cluster: Postfix stop failed" >&2
    fi
    "$SCRIPTS/stop-rabbitmq-cluster.sh" >/dev/null || echo "cluster: RabbitMQ stop failed" >&2
    [ ! -d "$dir/postgres" ] || "$SCRIPTS/stop-postgres.sh" "$dir/postgres" >/dev/null
    rm -rf "$dir"
    echo "cluster: stopped"
}

case $command in
    start) do_start ;;
    status) [ -d "$dir" ] || fail "$dir: no cluster there"; do_status ;;
    stop) [ -d "$dir" ] || exit 0
          [ -f "$dir/.liaison-cluster" ] || fail "$dir was not made by cluster.sh start: left alone"
          do_stop ;;
    *) usage ;;
esac
