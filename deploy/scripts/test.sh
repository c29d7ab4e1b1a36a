#!/usr/bin/env bash
# Install everything Liaison's tests need on a fresh Debian/Ubuntu machine, then run the whole suite.
#   - Debian packages: python3-venv, rabbitmq-server, postfix (installed without prompts, not left running),
#     dovecot-imapd (private instances per test module, tests/support/dovecot.py; the packaged one is not started),
#     xmlsec1 (verifies our VIHF signatures independently), fonts-dejavu-core (accents in rendered PDFs)
#   - a virtualenv in .venv with Liaison and its test dependencies
#   - RabbitMQ started on 127.0.0.1 for the run (the contract suite against it is mandatory here), and
#     stopped again at the end; a node already running is used as it is
#   - a 3-node RabbitMQ cluster on 127.0.0.1:5701-5703 (start-rabbitmq-cluster.sh) for the bus contract and
#     failover tests, stopped again at the end; one already running is used as it is; LIAISON_TEST_CLUSTER=0
#     skips it (and the tests that need it)
#   - a private PostgreSQL cluster on 127.0.0.1 for the run (the journal's contract suite runs on it too)
#   - the fault suite (tests/faults, LIAISON_REQUIRE_FAULTS=1) starts and kills servers of its own: a RabbitMQ
#     cluster on 127.0.0.1:5801-5803, a PostgreSQL cluster and Postfix; LIAISON_TEST_FAULTS=0 skips it
# Works from a clone anywhere (the broker, running as the rabbitmq user, reads nothing from the clone).
# Usage: deploy/scripts/test.sh [pytest args...]
#        LIAISON_RABBITMQ_NODE=name@localhost LIAISON_RABBITMQ_PORT=5700 deploy/scripts/test.sh   (another node)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# What to stop on exit, however the run ends: each server block adds its own line before it starts anything.
on_exit=()
run_on_exit() { local action; for action in "${on_exit[@]}"; do eval "$action"; done; }
trap run_on_exit EXIT

need_apt=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
[ -x /usr/sbin/postfix ] || need_apt+=(postfix)
[ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)         # the structure's mailbox the notices come back to
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v xmlsec1 >/dev/null 2>&1 || need_apt+=(xmlsec1)              # independent check of the VIHF signature
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)   # lab report PDFs
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== apt-get install ${need_apt[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

# --- the console's browser tests: headless Chromium and its driver (Debian chromium, chromium-driver) ---
need_browser=()
[ -x /usr/bin/chromium ] || need_browser+=(chromium)
[ -x /usr/bin/chromedriver ] || need_browser+=(chromium-driver)
if [ ${#need_browser[@]} -gt 0 ]; then
  echo "== apt-get install ${need_browser[*]} (console browser tests)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_browser[@]}"
fi
export LIAISON_REQUIRE_BROWSER=1      # here a missing browser fails the browser tests instead of skipping them
# --- end of the console block ---

echo "== virtualenv and Python packages"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

echo "== Postfix (configured per test run; this only makes sure it can be)"
as_root deploy/scripts/prepare-postfix.sh

echo "== RabbitMQ on 127.0.0.1"
# The node and port come from LIAISON_RABBITMQ_NODE / LIAISON_RABBITMQ_PORT (start-rabbitmq.sh), default
# rabbit@localhost on 5672. A node that already runs is used and left running; one this script starts is
# stopped on exit however the run ends - the trap is set before the start, so a failed start leaves nothing.
rabbit_node=${LIAISON_RABBITMQ_NODE:-rabbit@localhost}
export LIAISON_AMQP_URL=${LIAISON_AMQP_URL:-amqp://guest:guest@127.0.0.1:${LIAISON_RABBITMQ_PORT:-5672}/}
if as_root env ERL_EPMD_ADDRESS=127.0.0.1 rabbitmq-diagnostics -q -n "$rabbit_node" ping >/dev/null 2>&1; then
  echo "RabbitMQ $rabbit_node already running: leaving it as it is"
else
  on_exit+=('as_root env LIAISON_RABBITMQ_NODE="${LIAISON_RABBITMQ_NODE:-}" LIAISON_RABBITMQ_PORT="${LIAISON_RABBITMQ_PORT:-}" \
        deploy/scripts/stop-rabbitmq.sh >/dev/null 2>&1 || true')
  as_root env LIAISON_RABBITMQ_NODE="${LIAISON_RABBITMQ_NODE:-}" LIAISON_RABBITMQ_PORT="${LIAISON_RABBITMQ_PORT:-}" \
    deploy/scripts/start-rabbitmq.sh
fi

if [ "${LIAISON_TEST_CLUSTER:-1}" != 0 ]; then
  echo "== RabbitMQ cluster of 3 nodes on 127.0.0.1, from port ${LIAISON_RABBITMQ_CLUSTER_PORT:-5701}"
  # A cluster that already runs is used and left running; one started here is stopped on exit (and by
  # start-rabbitmq-cluster.sh itself when its start fails).
  cluster_state=/run/liaison-rabbitmq-cluster
  [ -s "$cluster_state" ] || on_exit+=('as_root deploy/scripts/stop-rabbitmq-cluster.sh >/dev/null 2>&1 || true')
  cluster_urls=$(as_root env LIAISON_RABBITMQ_CLUSTER_PORT="${LIAISON_RABBITMQ_CLUSTER_PORT:-}" \
    deploy/scripts/start-rabbitmq-cluster.sh | tee /dev/stderr | sed -n 's/^LIAISON_AMQP_CLUSTER_URLS=//p')
  export LIAISON_AMQP_CLUSTER_URLS=$cluster_urls LIAISON_REQUIRE_RABBITMQ_CLUSTER=1
fi

echo "== PostgreSQL: a private cluster on 127.0.0.1 for this run (installed if missing), deleted after it"
pg_dir=$(mktemp -d /tmp/liaison-pg.XXXXXX)      # under /tmp: the postgres user must reach it
on_exit+=("as_root deploy/scripts/stop-postgres.sh '$pg_dir' >/dev/null 2>&1 || true")   # before the start
as_root deploy/scripts/start-postgres.sh "$pg_dir"
LIAISON_TEST_POSTGRES_URL=$(as_root cat "$pg_dir/url")
export LIAISON_TEST_POSTGRES_URL LIAISON_REQUIRE_POSTGRES=1

if [ "${LIAISON_TEST_FAULTS:-1}" != 0 ]; then
  echo "== fault suite (tests/faults): its own RabbitMQ cluster on 127.0.0.1:5801-5803, PostgreSQL and Postfix"
  # The suite kills and restarts its own servers, never the shared ones above: it starts them when it begins
  # and stops them at its end. Should pytest itself be killed, what it left is stopped here: its cluster
  # (unless it ran before this script) and the small tmpfs volumes of its disk-full scenario.
  # LIAISON_TEST_FAULTS=0 leaves the suite out (it is then skipped, saying so).
  [ -s /run/liaison-faults-rabbitmq-cluster ] || on_exit+=('as_root env LIAISON_RABBITMQ_CLUSTER_NAME=liaison-faults \
      LIAISON_RABBITMQ_CLUSTER_PORT=5801 deploy/scripts/stop-rabbitmq-cluster.sh >/dev/null 2>&1 || true')
  on_exit+=('for v in /tmp/liaison-faults-volume-*; do [ -d "$v" ] && { as_root umount -l "$v" 2>/dev/null; rm -rf "$v"; }; done; true')
  export LIAISON_REQUIRE_FAULTS=1
fi

echo "== dependency rules (import-linter contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache

echo "== tests"
export LIAISON_REQUIRE_RABBITMQ=1 LIAISON_REQUIRE_POSTFIX=1 LIAISON_REQUIRE_XMLSEC1=1 LIAISON_REQUIRE_DOVECOT=1
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
