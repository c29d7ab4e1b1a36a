"""The operator's actions on a message, as pages (a confirmation step) and as JSON under ``/api/``.

Release, retry a recipient, discard with a reason, replay: each is done by
:class:`router.actions.MessageActions` (the same service as ``liaison release``
and its siblings), which audits it and keeps the never-twice rule. Pages: a GET
shows what will happen and asks for a ticked confirmation; the POST carries the
CSRF token and the tick. API: a POST with a JSON body; a session caller sends
``X-CSRF-Token``, a bearer-token caller does not (no cookie is read then).
Operator role or above.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from channels.console import browse
from channels.console.pages import render
from channels.console.security import check_api_csrf, check_csrf, requires
from channels.console.users import Role
from channels.console.action_errors import as_http_errors, status_of
from router.actions import ActionError, ActionResult, MessageActions

#: action (as in URLs) → (title, what it does, needs a recipient, needs a reason)
ACTIONS = {
    "release": ("Release", "Puts its parked job(s) back on their queue, to run again from that stage. "
                           "Fix the cause first.", False, False),
    "retry-recipient": ("Retry a recipient", "Gives this failed or refused recipient a new attempt. A recipient "
                                             "who accepted the document is never mailed again.", True, False),
    "discard": ("Discard", "Closes the message for good (state discarded) with your reason; nothing of it runs "
                           "again.", False, True),
    "replay": ("Replay", "Runs the message again from its HL7 through every stage; recipients who accepted it are "
                         "not mailed again, failed and refused ones get a new attempt.", False, False),
}


async def _do(actions: MessageActions, action: str, key: str, user: str, fields: dict[str, Any]) -> ActionResult:
    if action == "release":
        return await actions.release(key, user)
    if action == "retry-recipient":
        recipient = str(fields.get("recipient") or "").strip()
        if not recipient:
            raise ActionError("recipient: the address of the recipient to retry is required")
        return await actions.retry_recipient(key, recipient, user)
    if action == "discard":
        return await actions.discard(key, str(fields.get("reason") or ""), user)
    return await actions.replay(key, user)


def _action(request: Request) -> str:
    """The action a route serves: the last segment of its path (one route per action, see ``ROUTES``)."""
    return request.url.path.rstrip("/").rsplit("/", 1)[1]


@requires(Role.OPERATOR)
async def confirm(request: Request) -> Response:
    action, key = _action(request), request.path_params["key"]
    found = await browse.timeline(request.app.state.journal, key)
    if found is None:
        raise HTTPException(404, "no such message")
    title, what, per_recipient, with_reason = ACTIONS[action]
    recipients = [o.destination for o in found.outcomes if o.status in ("failed", "refused")]
    return render(request, "action.html", record=found.record, action=action, title=title, what=what,
                  per_recipient=per_recipient, with_reason=with_reason, recipients=recipients,
                  chosen=request.query_params.get("recipient", ""), error="")


@requires(Role.OPERATOR)
async def perform(request: Request) -> Response:
    action, key = _action(request), request.path_params["key"]
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    if form.get("confirm") != "yes":
        raise HTTPException(400, "not confirmed: tick the confirmation box")
    with as_http_errors():
        await _do(request.app.state.actions, action, key, request.state.user.name, dict(form))
    return RedirectResponse(f"/messages/{key}", status_code=303)


@requires(Role.OPERATOR, api=True)
async def api_perform(request: Request) -> Response:
    action, key = _action(request), request.path_params["key"]
    check_api_csrf(request)
    try:
        body = await request.body()
        fields = json.loads(body) if body.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "expected a JSON object body, e.g. {\"reason\": \"...\"}"}, status_code=400)
    if not isinstance(fields, dict):
        return JSONResponse({"error": "expected a JSON object body, e.g. {\"reason\": \"...\"}"}, status_code=400)
    try:
        result = await _do(request.app.state.actions, action, key, request.state.user.name, fields)
    except ActionError as exc:
        return JSONResponse({"error": str(exc)}, status_code=status_of(exc))
    return JSONResponse({"message_key": result.message_key, "action": result.action, "outcome": result.outcome})


ROUTES = [route for action in ACTIONS for route in (
    Route(f"/messages/{{key}}/{action}", confirm),
    Route(f"/messages/{{key}}/{action}", perform, methods=["POST"]),
    Route(f"/api/messages/{{key}}/{action}", api_perform, methods=["POST"]))]
