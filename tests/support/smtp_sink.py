"""Scriptable TLS-only SMTP sink for the mail tests: see :mod:`channels.smtp.sink` (the demo uses it too)."""

from channels.smtp.sink import ReceivedMail, SmtpSink

__all__ = ["ReceivedMail", "SmtpSink"]
