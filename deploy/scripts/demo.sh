#!/usr/bin/env bash
# Install Liaison in a virtualenv (.venv) and run `liaison demo`: sample HL7 messages in over MLLP,
# lettres and lab reports out as IHE_XDM.ZIP over a local TLS mail server, with a table of what was delivered.
set -euo pipefail
cd "$(dirname "$0")/../.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e .
exec .venv/bin/liaison demo "$@"
