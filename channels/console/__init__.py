"""The operations console: a web face over the Journal and Bus ports (Starlette, server-rendered).

URL form: ``https://HOST:PORT/`` with ``[console] tls_cert`` and ``tls_key``, or
``http://127.0.0.1:PORT/`` (plain HTTP is refused on any other address).

Features: ``/healthz`` and ``/readyz``; the message browser (filters, keyset
pages) and a message's timeline, as HTML pages and as JSON under ``/api/``;
the parked messages; release, retry a recipient, discard and replay, each
confirmed and audited (``actions.py``, over :mod:`router.actions`); the audit
trail for admins (``audit.py``). Local users (``users.py``) with three roles:
viewer (metadata only), operator (raw messages and actions), admin (what an
operator does, and the audit; users are managed with ``liaison user``). Signed
``HttpOnly``/``SameSite=Strict`` session cookies, a CSRF token on every POST,
API tokens (``Authorization: Bearer``) for scripts, a lockout after repeated
wrong passwords, CSP and the usual security headers (``security.py``).

The modules are imported where needed (``app``, ``users``, ``serve``), so that reading the
configuration does not load the web stack.
"""
