"""The audit trail for admins: ``/audit`` (a page) and ``/api/audit`` (JSON), newest first, keyset pages.

Rows come from the users store (``users.py``): logins and failed logins,
lockouts, user and token changes, refused tokens, payload views and every
action on a message, each with user, time, target (a message key, a user, a
path) and outcome. Filters: ``user``, ``action``, ``target``; ``before`` is the
cursor the previous page gave (the last row's id), so a page costs the same
however deep it is.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.console.pages import render
from channels.console.security import requires
from channels.console.users import AuditRow, Role

PAGE_SIZE = 50
MAX_PAGE = 500
FILTERS = ("user", "action", "target")


class BadAuditQuery(ValueError):
    """A cursor or limit the audit pages cannot read; the message says what was expected."""


def _page(request: Request) -> tuple[list[AuditRow], int | None, dict[str, str]]:
    params = request.query_params
    try:
        before = int(params["before"]) if params.get("before") else None
    except ValueError as exc:
        raise BadAuditQuery("before: expected the cursor a previous page gave (a number)") from exc
    try:
        limit = int(params.get("limit") or PAGE_SIZE)
    except ValueError as exc:
        raise BadAuditQuery(f"limit: expected a number from 1 to {MAX_PAGE}") from exc
    if not 1 <= limit <= MAX_PAGE:
        raise BadAuditQuery(f"limit: expected a number from 1 to {MAX_PAGE}")
    filters = {name: params.get(name, "") for name in FILTERS}
    rows = request.app.state.users.audit_page(before=before, limit=limit + 1, **filters)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None, filters


def row_json(row: AuditRow) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "user": row.user, "action": row.action, "target": row.target,
            "outcome": row.outcome}


@requires(Role.ADMIN)
async def audit_page(request: Request) -> Response:
    try:
        rows, cursor, filters = _page(request)
        error = ""
    except BadAuditQuery as exc:
        rows, cursor, filters, error = [], None, {name: "" for name in FILTERS}, str(exc)
    next_query = {**{k: v for k, v in filters.items() if v}, "before": cursor} if cursor is not None else None
    return render(request, "audit.html", rows=rows, filters=filters, next_query=next_query, error=error,
                  status_code=400 if error else 200)


@requires(Role.ADMIN, api=True)
async def audit_api(request: Request) -> Response:
    try:
        rows, cursor, _ = _page(request)
    except BadAuditQuery as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"audit": [row_json(r) for r in rows], "next": None if cursor is None else str(cursor)})


ROUTES = [Route("/audit", audit_page), Route("/api/audit", audit_api)]
