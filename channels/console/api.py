"""The JSON API under ``/api/``: the same reads and actions as the pages, for scripts.

Session cookie authentication, where a POST needs the ``X-CSRF-Token`` header
holding the session's token (``GET /api/session``); or an API token
(``Authorization: Bearer``, ``liaison user token``), with its user's role and no
CSRF token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from channels.console import browse
from channels.console.security import check_api_csrf, csrf_token, requires
from channels.console.users import Role
from channels.console.action_errors import as_http_errors


@requires(Role.VIEWER, api=True)
async def session(request: Request) -> Response:
    user = request.state.user
    bearer = getattr(request.state, "bearer", False)        # a token caller needs no CSRF token, nor a cookie
    return JSONResponse({"user": user.name, "role": str(user.role), "csrf": None if bearer else csrf_token(request)})


@requires(Role.VIEWER, api=True)
async def messages(request: Request) -> Response:
    operator = request.state.user.role.allows(Role.OPERATOR)
    if not operator and browse.asks_patient(request.query_params):
        return JSONResponse({"error": "searching by IPP or INS needs the operator role"}, status_code=403)
    try:
        page = await browse.search(request.app.state.journal, request.query_params)
    except browse.BadQuery as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    records = page.records
    await browse.audit_patient_search(request, len(records))
    if not operator:
        records = [browse.masked_record(r) for r in records]
    return JSONResponse({"messages": [browse.metadata(r) for r in records], "next": page.next_cursor})


@requires(Role.VIEWER, api=True)
async def message(request: Request) -> Response:
    found = await browse.timeline(request.app.state.journal, request.path_params["key"])
    if found is None:
        return JSONResponse({"error": "no such message"}, status_code=404)
    if not request.state.user.role.allows(Role.OPERATOR):
        found = browse.masked_timeline(found)
    return JSONResponse({"message": browse.metadata(found.record),
                         "events": [browse.event_json(e) for e in found.events],
                         "outcomes": [browse.outcome_json(o) for o in found.outcomes],
                         "mails": [browse.mail_json(m) for m in found.mails]})


@requires(Role.OPERATOR, api=True)
async def raw(request: Request) -> Response:
    journal = request.app.state.journal
    record = await journal.message(request.path_params["key"])
    if record is None:
        return JSONResponse({"error": "no such message"}, status_code=404)
    await browse.audit(journal, record.key, "raw_viewed", f"raw message viewed by {request.state.user.name} (API)")
    await request.app.state.users.audit_async(request.state.user.name, "payload.view", record.key, "api")
    return PlainTextResponse("\n".join(browse.raw_segments(record.raw)) + "\n")


@requires(Role.VIEWER, api=True)
async def parked(request: Request) -> Response:
    masked = not request.state.user.role.allows(Role.OPERATOR)
    items = await browse.parked(request.app.state.bus, masked=masked,
                                                    journal=request.app.state.journal)
    return JSONResponse({"parked": [browse.parked_json(p) for p in items]})


@requires(Role.OPERATOR, api=True)
async def release(request: Request) -> Response:
    check_api_csrf(request)
    with as_http_errors():
        result = await request.app.state.actions.release_parked(
            request.path_params["queue"], request.path_params["message_id"], request.state.user.name)
    return JSONResponse({"released": True, "message_key": result.message_key, "outcome": result.outcome})


ROUTES = [
    Route("/api/session", session),
    Route("/api/messages", messages),
    Route("/api/messages/{key}", message),
    Route("/api/messages/{key}/raw", raw),
    Route("/api/parked", parked),
    Route("/api/parked/{queue}/{message_id}/release", release, methods=["POST"]),
]
