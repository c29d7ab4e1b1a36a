#!/usr/bin/env bash
# Stop the cluster start-postgres.sh started in DIR, and delete DIR.
#
#   deploy/scripts/stop-postgres.sh DIR
#
# Safe to call whatever state the start left (nothing started, half initialised, running):
# it stops a running server (fast shutdown, bounded wait) and deletes DIR only when it holds
# the mark start-postgres.sh leaves. Succeeds when nothing is left running.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
dir=$1
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
[ -d "$dir" ] || exit 0

if [ -f "$dir/data/postmaster.pid" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    owner=$(stat -c %U "$dir/data")
    if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
        as_owner() { runuser -u "$owner" -- "$@"; }
    else
        as_owner() { "$@"; }
    fi
    echo "stop-postgres: stopping the cluster in $dir"
    cd /                                # the owner may not enter the folder we were started from
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null; then
        pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "stop-postgres: server $pid still running" >&2
            exit 1
        fi
    fi
fi

if [ -f "$dir/.liaison-postgres" ]; then
    rm -rf "$dir"
elif [ -z "$(ls -A "$dir")" ]; then
    rmdir "$dir"
else
    echo "stop-postgres: $dir was not made by start-postgres.sh: left in place" >&2
fi
