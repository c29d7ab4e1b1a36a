"""Throw-away test PKI for the mail tests: see :mod:`channels.testing.pki` (the demo uses it too)."""

from channels.testing.pki import TestPki, make_test_pki

__all__ = ["TestPki", "make_test_pki"]
