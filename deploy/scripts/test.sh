#!/usr/bin/env bash
# Install everything Liaison's tests need on a fresh Debian/Ubuntu machine, then run the whole suite.
#   - Debian packages: python3-venv, rabbitmq-server, postfix (installed without prompts, not left running),
#     xmlsec1 (verifies our VIHF signatures independently), fonts-dejavu-core (accents in rendered PDFs)
#   - a virtualenv in .venv with Liaison and its test dependencies
#   - RabbitMQ started on 127.0.0.1 for the run (the contract suite against it is mandatory here)
#   - a private PostgreSQL cluster on 127.0.0.1 for the run (the journal's contract suite runs on it too)
# Usage: deploy/scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

need_apt=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
[ -x /usr/sbin/postfix ] || need_apt+=(postfix)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v xmlsec1 >/dev/null 2>&1 || need_apt+=(xmlsec1)              # independent check of the VIHF signature
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)   # lab report PDFs
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== apt-get install ${need_apt[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

echo "== virtualenv and Python packages"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

echo "== Postfix (configured per test run; this only makes sure it can be)"
as_root deploy/scripts/prepare-postfix.sh

echo "== RabbitMQ on 127.0.0.1"
if as_root rabbitmq-diagnostics -q -n rabbit@localhost ping >/dev/null 2>&1; then
  echo "RabbitMQ already running: leaving it as it is"
else
  as_root deploy/scripts/start-rabbitmq.sh
  trap 'as_root deploy/scripts/stop-rabbitmq.sh >/dev/null 2>&1 || true' EXIT
fi

echo "== PostgreSQL: a private cluster on 127.0.0.1 for this run (installed if missing), deleted after it"
pg_dir=$(mktemp -d /tmp/liaison-pg.XXXXXX)      # under /tmp: the postgres user must reach it
eval "earlier_exit_trap=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
trap "as_root deploy/scripts/stop-postgres.sh '$pg_dir' >/dev/null 2>&1 || true; ${earlier_exit_trap:-}" EXIT
as_root deploy/scripts/start-postgres.sh "$pg_dir"
LIAISON_TEST_POSTGRES_URL=$(as_root cat "$pg_dir/url")
export LIAISON_TEST_POSTGRES_URL LIAISON_REQUIRE_POSTGRES=1

echo "== dependency rules (import-linter contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache

echo "== tests"
export LIAISON_REQUIRE_RABBITMQ=1 LIAISON_REQUIRE_POSTFIX=1 LIAISON_REQUIRE_XMLSEC1=1
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
