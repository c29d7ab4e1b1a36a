#!/usr/bin/env bash
# One-time, root-level preparation for the private Postfix instances the mail tests start
# (tests/support/postfix.py; recipe in the shared spec runtime-recipes.md).
#
#   - installs Debian's postfix without prompts ("No configuration") when it is missing;
#   - makes sure the default /etc/postfix/main.cf exists: Postfix reads it to check that a
#     private instance's config directory is listed in alternate_config_directories
#     (the test helper adds and removes its own directory with `postconf -e`).
#
# Nothing is started: the default instance stays down, each test run starts its own instance
# on 127.0.0.1 and a free port. Idempotent; needs root.
#
#   sudo deploy/scripts/prepare-postfix.sh
set -euo pipefail

fail() { echo "prepare-postfix: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root"
export PATH="$PATH:/usr/sbin:/sbin"

if ! command -v postfix >/dev/null 2>&1; then
    echo "prepare-postfix: installing postfix (no configuration, not started)"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix
fi

for user in postfix nobody; do
    id "$user" >/dev/null 2>&1 || fail "user $user is missing: reinstall the postfix package"
done
getent group postdrop >/dev/null || fail "group postdrop is missing: reinstall the postfix package"

if [ ! -e /etc/postfix/main.cf ]; then
    printf '%s\n' "# created by Liaison's deploy/scripts/prepare-postfix.sh (Postfix installed with 'No configuration')" \
        > /etc/postfix/main.cf
fi
postconf -h mail_version >/dev/null || fail "postconf cannot read /etc/postfix/main.cf"
echo "prepare-postfix: ready (postfix $(postconf -h mail_version))"
