"""The console's Starlette application, built around the ports it is handed.

``create_app(journal, bus, users)`` takes opened adapters (the composition
root owns their lifetime); ``/healthz`` says the process answers, ``/readyz``
that the journal and the bus answer too.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from channels.console import actions, api, audit, metrics, observe, openapi, pages
from channels.console.installation import Installation
from channels.console.security import SESSION_MAX_AGE, SecurityHeaders
from channels.console.users import SqliteUsers
from router import queues
from router.actions import MessageActions
from router.errors import EngineError
from router.ports import Bus, Journal

HERE = Path(__file__).parent
log = structlog.get_logger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 when the journal and the bus both answer a read, else 503 saying which does not.

    Both reads are cheap whatever the backlog: one row by index, one queue's counts.
    """
    checks = {}
    for name, probe in (("journal", lambda: request.app.state.journal.search(limit=1)),
                        ("bus", lambda: request.app.state.bus.depth(queues.INBOUND))):
        try:
            await probe()
            checks[name] = "ok"
        except (EngineError, OSError) as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
            log.warning("console.not_ready", part=name, error=type(exc).__name__)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503)


async def http_error(request: Request, exc: HTTPException) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return pages.render(request, "error.html", status_code=exc.status_code, status=exc.status_code,
                        reason=exc.detail)


def create_app(journal: Journal, bus: Bus, users: SqliteUsers, *, https: bool = False,
               installation: Installation | None = None) -> Starlette:
    """The console over opened ports; ``https`` marks the session cookie ``Secure`` and adds HSTS.

    ``installation``: the configuration around them (``installation.py``), from the composition root.
    """
    routes = [Route("/healthz", healthz), Route("/readyz", readyz), *api.ROUTES, *pages.ROUTES, *observe.ROUTES,
              *metrics.ROUTES, *openapi.ROUTES, *actions.ROUTES, *audit.ROUTES,
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    middleware = [
        Middleware(SecurityHeaders, https=https),
        Middleware(SessionMiddleware, secret_key=users.session_secret().hex(), session_cookie="liaison_session",
                   max_age=SESSION_MAX_AGE, same_site="strict", https_only=https),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.journal, app.state.bus, app.state.users = journal, bus, users
    app.state.installation = installation
    app.state.actions = MessageActions(journal, bus, audit=users.audit_async)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    return app
