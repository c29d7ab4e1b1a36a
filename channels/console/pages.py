"""The HTML pages: login, the message browser, a message's timeline, parked messages and their release."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from channels.console import browse
from channels.console.narrative import carried_cda, readable
from channels.console.security import check_csrf, csrf_token, current_user, requires
from channels.console.users import LOCK_FOR, MAX_FAILURES, Role
from channels.console.action_errors import as_http_errors
from router.ports import MessageState

LOGIN_FAILED = {
    "wrong": "Wrong name or password.",
    "locked": f"This account is locked after {MAX_FAILURES} wrong passwords; try again in "
              f"{int(LOCK_FOR.total_seconds() // 60)} minutes.",
    "disabled": "This account is disabled.",
}


def render(request: Request, template: str, status_code: int = 200, **context) -> Response:
    context.setdefault("user", getattr(request.state, "user", None) or current_user(request))
    context["csrf"] = csrf_token(request)
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_next(request.query_params.get("next")), error="")


async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    result = await request.app.state.users.login(str(form.get("name", "")), str(form.get("password", "")))
    target = _next(form.get("next"))
    if result.user is None:
        return render(request, "login.html", status_code=401, next=target, error=LOGIN_FAILED[result.reason],
                      user=None)
    request.session.clear()                      # a new session: new CSRF token, nothing from before
    request.session["user"] = result.user.name
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _next(value) -> str:
    """Where to go after login: a path of this console only."""
    value = str(value or "")
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/messages"


@requires(Role.VIEWER)
async def messages(request: Request) -> Response:
    params = request.query_params
    operator = request.state.user.role.allows(Role.OPERATOR)
    if not operator and browse.asks_patient(params):
        raise HTTPException(403, "searching by IPP or INS needs the operator role")
    try:
        page = await browse.search(request.app.state.journal, params)
        error = ""
    except browse.BadQuery as exc:
        page, error = browse.Page([], None), str(exc)
    if not error:
        await browse.audit_patient_search(request, len(page.records))
    if not operator:
        page = browse.Page([browse.masked_record(r) for r in page.records], page.next_cursor)
    filters = {name: params.get(name, "") for name in browse.FILTERS}
    next_query = None
    if page.next_cursor:
        next_query = {**{k: v for k, v in filters.items() if v}, "before": page.next_cursor}
    return render(request, "messages.html", page=page, filters=filters, error=error, next_query=next_query,
                  states=[s.value for s in MessageState], status_code=400 if error else 200, operator=operator)


@requires(Role.VIEWER)
async def message(request: Request) -> Response:
    journal = request.app.state.journal
    found = await browse.timeline(journal, request.path_params["key"])
    if found is None:
        raise HTTPException(404, "no such message")
    user = request.state.user
    segments = document = None
    if user.role.allows(Role.OPERATOR):
        segments = browse.raw_segments(found.record.raw)
        cda = carried_cda(found.record.raw)
        document = readable(cda) if cda is not None else None
        shown = "raw message and its document" if document is not None else "raw message"
        await browse.audit(journal, found.record.key, "raw_viewed", f"{shown} viewed by {user.name}")
        await request.app.state.users.audit_async(user.name, "payload.view", found.record.key, "page")
    else:
        found = browse.masked_timeline(found)
    return render(request, "message.html", timeline=found, segments=segments, document=document)


@requires(Role.VIEWER)
async def parked(request: Request) -> Response:
    masked = not request.state.user.role.allows(Role.OPERATOR)
    return render(request, "parked.html", items=await browse.parked(request.app.state.bus, masked=masked,
                                                    journal=request.app.state.journal))


@requires(Role.OPERATOR)
async def confirm_release(request: Request) -> Response:
    queue, message_id = request.path_params["queue"], request.path_params["message_id"]
    item = next((p for p in await browse.parked(request.app.state.bus)
                 if p.queue == queue and p.message_id == message_id), None)
    if item is None:
        raise HTTPException(404, "no such parked message")
    return render(request, "release.html", item=item)


@requires(Role.OPERATOR)
async def release(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    if form.get("confirm") != "yes":
        raise HTTPException(400, "the release was not confirmed")
    with as_http_errors():
        result = await request.app.state.actions.release_parked(
            request.path_params["queue"], request.path_params["message_id"], request.state.user.name)
    return RedirectResponse(f"/messages/{result.message_key}", status_code=303)


async def home(request: Request) -> Response:
    return RedirectResponse("/messages", status_code=303)


ROUTES = [
    Route("/", home),
    Route("/login", login_form),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/messages", messages),
    Route("/messages/{key}", message),
    Route("/parked", parked),
    Route("/parked/{queue}/{message_id}/release", confirm_release),
    Route("/parked/{queue}/{message_id}/release", release, methods=["POST"]),
]
