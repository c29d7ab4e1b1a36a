"""The dashboard, compliance and configuration pages, and the same as JSON under ``/api/``.

Every role may see them: they hold counts, states, times and settings without secrets. The
compliance list shows a stay's IPP only to roles allowed to see patient data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.console import dashboard as boards
from channels.console.pages import render
from channels.console.security import requires
from channels.console.users import Role


@requires(Role.VIEWER)
async def dashboard_page(request: Request) -> Response:
    board = await boards.dashboard(request.app.state.journal, request.app.state.bus, _installation(request))
    return render(request, "dashboard.html", board=board, columns=boards.COLUMNS,
                  bars=boards.bars(board.activity.hourly), queues=[boards.depth_json(d) for d in board.depths])


@requires(Role.VIEWER, api=True)
async def dashboard_api(request: Request) -> Response:
    board = await boards.dashboard(request.app.state.journal, request.app.state.bus, _installation(request))
    return JSONResponse(boards.dashboard_json(board))


async def _compliance(request: Request) -> dict:
    installation = _installation(request)
    zone = ZoneInfo(installation.timezone if installation is not None else "UTC")
    asked = request.query_params.get("day")
    try:
        day = date.fromisoformat(asked) if asked else datetime.now(zone).date()
    except ValueError:
        raise HTTPException(400, "day: expected a date, e.g. 2026-12-06") from None
    now = datetime.now(UTC)
    units, stays = await boards.compliance(request.app.state.journal, day, zone, now)
    patient = request.state.user.role.allows(Role.OPERATOR)
    return {"day": day.isoformat(), "timezone": str(zone),
            "units": [vars(u) for u in units],
            "stays": [{"facility": s.facility, "encounter": s.encounter, "unit": s.unit,
                       "ipp": s.ipp if patient else None,
                       "discharged_at": _iso(s.discharged_at), "letter_due_at": _iso(s.letter_due_at),
                       "letter_sent_at": _iso(s.letter_sent_at), "alert_raised_at": _iso(s.alert_raised_at),
                       "status": boards.letter_status(s, now), "message_key": s.message_key} for s in stays]}


@requires(Role.VIEWER)
async def compliance_page(request: Request) -> Response:
    return render(request, "compliance.html", view=await _compliance(request))


@requires(Role.VIEWER, api=True)
async def compliance_api(request: Request) -> Response:
    return JSONResponse(await _compliance(request))


async def _configuration(request: Request) -> dict:
    installation = _installation(request)
    if installation is None:
        return {"configuration": None, "channels": [], "certificates": [],
                "note": "this console was started without the engine's configuration"}
    now = datetime.now(UTC)
    return {"configuration": installation.configuration(),
            "channels": [vars(c) for c in await installation.channels()],
            "certificates": [{"name": c.name, "path": c.path, "not_after": _iso(c.not_after),
                              "days_left": None if c.not_after is None else round(c.days_left(now), 1),
                              "problem": c.problem} for c in installation.certificates()]}


@requires(Role.VIEWER)
async def configuration_page(request: Request) -> Response:
    return render(request, "configuration.html", view=await _configuration(request))


@requires(Role.VIEWER, api=True)
async def configuration_api(request: Request) -> Response:
    return JSONResponse(await _configuration(request))


def _installation(request: Request):
    return getattr(request.app.state, "installation", None)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


ROUTES = [
    Route("/dashboard", dashboard_page),
    Route("/api/dashboard", dashboard_api),
    Route("/compliance", compliance_page),
    Route("/api/compliance", compliance_api),
    Route("/configuration", configuration_page),
    Route("/api/configuration", configuration_api),
]
