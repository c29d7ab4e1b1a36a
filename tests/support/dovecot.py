"""A private Dovecot for the notice tests (``channels/testing/dovecot.py``), skipped or required like Postfix.

Without root or Debian's ``dovecot-imapd`` the tests that need it are skipped with the reason,
unless ``LIAISON_REQUIRE_DOVECOT=1`` (set by ``deploy/scripts/test.sh``), where they fail.
"""

from __future__ import annotations

import os

import pytest

from channels.testing.dovecot import DovecotInstance, dovecot_unavailable, start_dovecot

__all__ = ["DovecotInstance", "require_dovecot", "start_dovecot"]


def require_dovecot() -> None:
    """Skip the test when Dovecot cannot run, or fail when LIAISON_REQUIRE_DOVECOT=1."""
    reason = dovecot_unavailable()
    if reason is None:
        return
    if os.environ.get("LIAISON_REQUIRE_DOVECOT") == "1":
        pytest.fail(f"LIAISON_REQUIRE_DOVECOT=1 but {reason}", pytrace=False)
    pytest.skip(f"Dovecot IMAP tests skipped: {reason}")
