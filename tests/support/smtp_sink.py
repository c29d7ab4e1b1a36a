"""Scriptable TLS-only SMTP sink for the mail tests: see :mod:`channels.testing.mail_sink` (the demo uses it too)."""

from channels.testing.mail_sink import ReceivedMail, SmtpSink

__all__ = ["ReceivedMail", "SmtpSink"]
