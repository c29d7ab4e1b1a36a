"""The JSON API under ``/api/``: the same reads and actions as the pages, for scripts.

Session cookie authentication (API tokens are for later); a POST needs the
``X-CSRF-Token`` header holding the session's token (``GET /api/session``).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from channels.console import browse
from channels.console.security import check_csrf, csrf_token, requires
from channels.console.users import Role


@requires(Role.VIEWER, api=True)
async def session(request: Request) -> Response:
    user = request.state.user
    return JSONResponse({"user": user.name, "role": str(user.role), "csrf": csrf_token(request)})


@requires(Role.VIEWER, api=True)
async def messages(request: Request) -> Response:
    try:
        page = await browse.search(request.app.state.journal, request.query_params)
    except browse.BadQuery as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    records = page.records
    if not request.state.user.role.allows(Role.OPERATOR):
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
    return PlainTextResponse("\n".join(browse.raw_segments(record.raw)) + "\n")


@requires(Role.VIEWER, api=True)
async def parked(request: Request) -> Response:
    masked = not request.state.user.role.allows(Role.OPERATOR)
    items = await browse.parked(request.app.state.bus, masked=masked)
    return JSONResponse({"parked": [browse.parked_json(p) for p in items]})


@requires(Role.OPERATOR, api=True)
async def release(request: Request) -> Response:
    check_csrf(request, request.headers.get("x-csrf-token"))
    key = await browse.release(request.app.state.bus, request.app.state.journal, request.path_params["queue"],
                               request.path_params["message_id"], request.state.user.name)
    if key is None:
        raise HTTPException(404, "no such parked message")
    return JSONResponse({"released": True, "message_key": key})


ROUTES = [
    Route("/api/session", session),
    Route("/api/messages", messages),
    Route("/api/messages/{key}", message),
    Route("/api/messages/{key}/raw", raw),
    Route("/api/parked", parked),
    Route("/api/parked/{queue}/{message_id}/release", release, methods=["POST"]),
]
