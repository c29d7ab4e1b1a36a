"""Who is asking, and what they may do: sessions, roles, CSRF tokens, security headers.

Sessions are Starlette's signed cookies (itsdangerous, the secret from the users
store): ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the console speaks
HTTPS, eight hours at most. The user is read again on every request, so a
disabled account loses its open sessions at once. Every POST carries the
session's CSRF token: a form field ``csrf`` from the pages, an
``X-CSRF-Token`` header from API clients with a session. An API caller may
instead send ``Authorization: Bearer TOKEN`` (``liaison user token``): then
only the token counts, with its user's role, and no CSRF token is asked.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.console.users import Role, SqliteUsers, User

SESSION_MAX_AGE = 8 * 3600
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = {
    b"content-security-policy": CSP.encode(),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
    b"cross-origin-opener-policy": b"same-origin",
}
Handler = Callable[[Request], Awaitable[Response]]


class SecurityHeaders:
    """Adds CSP and the usual security headers to every response (HSTS too over HTTPS)."""

    def __init__(self, app: ASGIApp, *, https: bool):
        self.app = app
        self.headers = dict(HEADERS)
        if https:
            self.headers[b"strict-transport-security"] = b"max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in self.headers.items() if name not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, given: str | None) -> None:
    """403 unless ``given`` is the session's token."""
    expected = request.session.get("csrf", "")
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise HTTPException(403, "missing or wrong CSRF token")


def check_api_csrf(request: Request) -> None:
    """An API POST: the ``X-CSRF-Token`` header for a session caller; none for a bearer-token caller."""
    if getattr(request.state, "bearer", False):
        return
    check_csrf(request, request.headers.get("x-csrf-token"))


def current_user(request: Request) -> User | None:
    """The logged-in user, still enabled, or None."""
    name = request.session.get("user")
    if not name:
        return None
    users: SqliteUsers = request.app.state.users
    user = users.user(name)
    if user is None or user.disabled:
        request.session.clear()
        return None
    return user


def bearer_user(request: Request, header: str) -> User | None:
    """The user of an ``Authorization: Bearer`` token, or None; the session cookie is not read then.

    A bearer caller is authenticated by the token alone (``request.state.bearer``): no CSRF token
    is asked of it, and a cookie sent along gives it nothing more. Refusals are audited.
    """
    scheme, _, token = header.partition(" ")
    users: SqliteUsers = request.app.state.users
    user = users.token_user(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if user is None:
        users.audit("-", "token", request.url.path, "refused")
        return None
    request.state.bearer = True
    return user


def requires(role: Role, *, api: bool = False) -> Callable[[Handler], Handler]:
    """Only for logged-in users of ``role`` or above: 401 (API) or the login page, else 403."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request) -> Response:
            bearer = request.headers.get("authorization") if api else None
            user = bearer_user(request, bearer) if bearer is not None else current_user(request)
            if user is None:
                if api:
                    return JSONResponse({"error": "a valid bearer token is required" if bearer is not None
                                         else "log in first"}, status_code=401,
                                        headers={"www-authenticate": "Bearer"})
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            if not user.role.allows(role):
                raise HTTPException(403, f"needs the {role} role (you are {user.role})")
            request.state.user = user
            return await handler(request)

        return guarded

    return decorate
