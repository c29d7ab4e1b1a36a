#!/usr/bin/env bash
# Start a private PostgreSQL cluster on 127.0.0.1 for a test run or a trial, without systemd.
#
#   deploy/scripts/start-postgres.sh DIR [PORT]
#   then: postgresql://liaison:<password>@127.0.0.1:PORT/liaison, written to DIR/url (mode 0600)
#
# DIR is a new or empty directory that holds everything: the cluster (DIR/data), its log
# (DIR/postgres.log) and its socket. Its parents must let the cluster's owner in: as root,
# initdb runs as the postgres user (it refuses root), and a folder made by `mktemp -d` in a
# private clone (mode 0700) is out of its reach - use one under /tmp. PORT defaults to a free one.
# The superuser "liaison" gets a random password (scram-sha-256, also on the socket); the
# database "liaison" is created. Installs the Debian package postgresql when missing (as root).
# Stop and delete it all with deploy/scripts/stop-postgres.sh DIR - set that up (trap) first.
set -euo pipefail

fail() { echo "start-postgres: $*" >&2; exit 1; }

[ $# -ge 1 ] || fail "usage: $0 DIR [PORT]"
dir=$1
port=${2:-}
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(bindir)" ]; then
    [ "$(id -u)" = 0 ] || fail "PostgreSQL is not installed: apt-get install -y postgresql"
    echo "start-postgres: apt-get install postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
             DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null; }
fi
bin=$(bindir)
[ -x "$bin/initdb" ] || fail "no initdb under /usr/lib/postgresql/*/bin"

# The cluster's owner: the postgres user when we are root, else whoever runs this.
if [ "$(id -u)" = 0 ]; then
    owner=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    owner=$(id -un)
    as_owner() { "$@"; }
fi

mkdir -p "$dir"
[ -z "$(ls -A "$dir")" ] || fail "$dir is not empty"
[ "$(id -u)" != 0 ] || chown postgres:postgres "$dir"
chmod 0700 "$dir"
as_owner test -w "$dir" || fail "$dir is out of reach of the $owner user (a parent folder is private?): use one under /tmp"
cd "$dir"                               # the owner may not enter the folder we were started from
touch "$dir/.liaison-postgres"          # stop-postgres.sh deletes only a folder that holds this mark

if [ -z "$port" ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')

umask 077
printf '%s\n' "$password" >"$dir/pwfile"
[ "$(id -u)" != 0 ] || chown postgres "$dir/pwfile"
as_owner "$bin/initdb" -D "$dir/data" -U liaison --pwfile="$dir/pwfile" -A scram-sha-256 -E UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
rm -f "$dir/pwfile"
cat >>"$dir/data/postgresql.conf" <<EOF
# deploy/scripts/start-postgres.sh: loopback only, socket in the cluster's own folder
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
EOF

echo "start-postgres: starting a cluster in $dir on 127.0.0.1:$port"
if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null; then
    tail -n 40 "$dir/postgres.log" >&2 || true
    fail "the cluster did not start (port $port taken?)"
fi
PGPASSWORD=$password "$bin/createdb" -h 127.0.0.1 -p "$port" -U liaison liaison || fail "createdb failed"

printf 'postgresql://liaison:%s@127.0.0.1:%s/liaison\n' "$password" "$port" >"$dir/url"
echo "start-postgres: ready on postgresql://liaison@127.0.0.1:$port/liaison (password in $dir/url)"
