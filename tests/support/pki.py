"""Throw-away test PKI for the mail tests: see :mod:`channels.smtp.testpki` (the demo uses it too)."""

from channels.smtp.testpki import TestPki, make_test_pki

__all__ = ["TestPki", "make_test_pki"]
