"""``/api/openapi.json``: the JSON API described in OpenAPI 3.1, written by hand as data.

By hand, because the descriptions are what a reader needs (which role, what is masked, what a
cursor is) and no route metadata says them. ``tests/unit/console/test_openapi.py`` keeps it
honest: every ``/api/`` route of the application is described with its methods and nothing
else is, and the top-level fields each endpoint answers are the ones described here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _obj(required: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema = {"type": "object", "properties": required, "required": list(required)}
    if description:
        schema["description"] = description
    return schema


def _optional(schema: dict[str, Any], **fields: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "properties": {**schema["properties"], **fields}}


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
ANY_OBJ = {"type": "object"}
ERROR = _obj({"error": STR})


def _q(name: str, description: str, schema: dict | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or STR}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": STR}


def _answers(ok: dict[str, Any], *codes: int, media: str = "application/json") -> dict[str, Any]:
    described = {200: {"description": "OK", "content": {media: {"schema": ok}}}}
    reasons = {400: "A filter or cursor the console cannot read", 401: "Not logged in",
               403: "The user's role does not allow it (or no CSRF token on a POST)", 404: "Not found",
               409: "The action cannot be done on this message now; the error says why"}
    for code in codes:
        described[code] = {"description": reasons[code], "content": {"application/json": {"schema": ERROR}}}
    return {str(code): value for code, value in described.items()}


MESSAGE = _obj({"key": STR, "received_at": TIME, "updated_at": TIME, "channel": STR, "sending_application": STR,
                "sending_facility": STR, "control_id": STR, "message_type": STR, "state": STR, "ack_code": STR,
                "detail": STR}, "A message's metadata; never its content (see /raw)")
EVENT = _obj({"at": TIME, "step": STR, "state": STR, "detail": STR, "document_id": STR, "destination": STR})
OUTCOME = _obj({"document_id": STR, "destination": STR, "status": STR, "detail": STR, "at": TIME})
MAIL = _obj({"message_id": STR, "envelope_id": STR, "document_id": STR, "recipients": {"type": "array", "items": _obj({
    "address": STR, "relayed_at": NULL_TIME, "delivered_at": NULL_TIME, "failed_at": NULL_TIME, "read_at": NULL_TIME,
    "error_at": NULL_TIME, "detail": STR})}}, "A mail sent for the message (its ENVID for delivery notices) and, per "
    "recipient, when the relay took it and what the notices read back over IMAP said")
PARKED = _obj({"queue": STR, "message_id": STR, "message_key": STR, "reason": STR, "attempt": INT})
COUNTS = {"type": "object", "additionalProperties": INT,
          "description": "received, in progress, delivered, partial, failed, parked, rejected"}

VIEWER = "Any logged-in user (viewer, operator, admin)."
OPERATOR = "Operators and admins only."

PATHS: dict[str, dict[str, Any]] = {
    "/api/session": {"get": {
        "summary": "Who is logged in, and the CSRF token every POST must carry in X-CSRF-Token",
        "description": VIEWER + " A bearer-token caller gets csrf null (it needs none).",
        "responses": _answers(_obj({"user": STR, "role": STR, "csrf": {"type": ["string", "null"]}}), 401)}},
    "/api/messages": {"get": {
        "summary": "Search the journal, newest first, one page at a time (keyset: pass `next` as `before`)",
        "description": VIEWER + " Searching by `ipp` or `ins` needs the operator role. IPP, INS, document id and "
                       "recipient are looked up by keyed digests: the journal does not hold them in clear, and "
                       "messages journaled before schema v7 are not found by them.",
        "parameters": [
            _q("state", "Current state", {"type": "string", "enum": ["received", "queued", "rejected", "processing",
                                                                     "dispatched", "delivered", "partial", "failed",
                                                                     "parked", "discarded"]}),
            _q("control_id", "MSH-10"), _q("type", "Message type and trigger, e.g. ORU^R01"),
            _q("sender", "Sending application (MSH-3)"),
            _q("since", "Received at or after (ISO date or date-time; UTC when no offset)"),
            _q("until", "Received before (ISO date or date-time)"),
            _q("ipp", "The patient's IPP (PID-3 of type PI); operators only"),
            _q("ins", "The patient's INS; operators only"),
            _q("document_id", "A document id, root^extension or the extension alone"),
            _q("recipient", "A recipient's mail address (a patient's own mailbox, named after the INS: operators only)"),
            _q("before", "The cursor `next` of the previous page"),
            _q("limit", "Page size, 1 to 500 (default 50)", INT)],
        "responses": _answers(_obj({"messages": {"type": "array", "items": MESSAGE},
                                    "next": {"type": ["string", "null"]}}), 400, 401, 403)}},
    "/api/messages/{key}": {"get": {
        "summary": "A message's timeline, its recipients' outcomes and its mails with their notices",
        "description": VIEWER + " A viewer sees patient mailboxes masked.",
        "parameters": [_path("key", "The journal key")],
        "responses": _answers(_obj({"message": MESSAGE, "events": {"type": "array", "items": EVENT},
                                    "outcomes": {"type": "array", "items": OUTCOME},
                                    "mails": {"type": "array", "items": MAIL}}), 401, 404)}},
    "/api/messages/{key}/raw": {"get": {
        "summary": "The message as received, one segment a line (each view is audited on its timeline)",
        "description": OPERATOR, "parameters": [_path("key", "The journal key")],
        "responses": _answers(STR, 401, 403, 404, media="text/plain")}},
    "/api/parked": {"get": {
        "summary": "Parked jobs of every stage queue, with the reason", "description": VIEWER,
        "responses": _answers(_obj({"parked": {"type": "array", "items": PARKED}}), 401)}},
    "/api/parked/{queue}/{message_id}/release": {"post": {
        "summary": "Put a parked job back on its queue (audited)",
        "description": OPERATOR + " Needs the X-CSRF-Token header.",
        "parameters": [_path("queue", "The stage queue, e.g. inbound"), _path("message_id", "The job's id"),
                       {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": STR}],
        "responses": _answers(_obj({"released": BOOL, "message_key": STR, "outcome": STR}), 401, 403, 404, 409)}},
    **{f"/api/messages/{{key}}/{action}": {"post": {
        "summary": summary + " (router/actions.py: audited, never a second mail to a recipient that accepted)",
        "description": OPERATOR + " A session caller sends the X-CSRF-Token header; a bearer-token caller does not.",
        "parameters": [_path("key", "The journal key")],
        **({"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}} if body else {}),
        "responses": _answers(_obj({"message_key": STR, "action": STR, "outcome": STR}), 400, 401, 403, 404, 409)}}
       for action, summary, body in (
           ("release", "Put the message's parked jobs back on their queue", None),
           ("retry-recipient", "A new attempt for one failed or refused recipient", _obj({"recipient": STR})),
           ("discard", "Close the message for good (state discarded) with a reason", _obj({"reason": STR})),
           ("replay", "Run the message again from its raw HL7 through every stage", None))},
    "/api/audit": {"get": {
        "summary": "The audit trail, newest first, one page at a time (keyset: pass `next` as `before`)",
        "description": "Admins only. Logins, failed logins, user and token changes, refused tokens, payload views "
                       "and actions, with user, time, target and outcome.",
        "parameters": [_q("user", "Only this user's rows"), _q("action", "Only this action, e.g. discard"),
                       _q("target", "Only rows about this message key (or user, or path)"),
                       _q("before", "The cursor `next` of the previous page"),
                       _q("limit", "Page size, 1 to 500 (default 50)", INT)],
        "responses": _answers(_obj({"audit": {"type": "array", "items": _obj({
            "id": INT, "at": TIME, "user": STR, "action": STR, "target": STR, "outcome": STR})},
            "next": {"type": ["string", "null"]}}), 400, 401, 403)}},
    "/api/dashboard": {"get": {
        "summary": "Traffic of the last hour and day, per hour, recipients, queues, reference files",
        "description": VIEWER + " Counts only, read from indexes.",
        "responses": _answers(_obj({
            "at": TIME,
            "messages": {"type": "array", "items": _obj({"channel": STR, "type": STR, "hour": COUNTS,
                                                         "day": COUNTS})},
            "recipients": {"type": "array", "items": _obj({"status": STR, "last_hour": INT, "last_day": INT,
                                                           "now": INT})},
            "hourly": {"type": "array", "items": _obj({"hour": TIME, "received": INT, "delivered": INT})},
            "oldest_waiting": {"type": ["object", "null"]},
            "peers": {"type": "array", "description": "MLLP peers (host, without the connection's port) that "
                                                      "sent in the last hour, busiest first, from the journal",
                      "items": _obj({"channel": STR, "host": STR, "messages": INT, "last_at": TIME})},
            "queues": {"type": "array", "items": ANY_OBJ},
            "reference_files": {"type": ["array", "null"],
                                "description": "null when the console was started without the configuration"},
        }), 401)}},
    "/api/compliance": {"get": {
        "summary": "Discharges of one day per unit: letter sent, overdue, not yet due",
        "description": VIEWER + " The IPP is given to operators and admins only (null otherwise).",
        "parameters": [_q("day", "The local day (engine.timezone), default today", {"type": "string",
                                                                                    "format": "date"})],
        "responses": _answers(_obj({"day": STR, "timezone": STR, "units": {"type": "array", "items": _obj({
            "unit": STR, "discharged": INT, "sent": INT, "overdue": INT, "pending": INT})},
            "stays": {"type": "array", "items": ANY_OBJ}}), 400, 401)}},
    "/api/configuration": {"get": {
        "summary": "The running configuration (secrets masked), channel status, certificates and their expiry",
        "description": VIEWER,
        "responses": _answers(_optional(_obj({"configuration": {"type": ["object", "null"]},
                                              "channels": {"type": "array", "items": ANY_OBJ},
                                              "certificates": {"type": "array", "items": ANY_OBJ}}),
                                        note=STR), 401)}},
    "/api/openapi.json": {"get": {
        "summary": "This description", "description": "No login needed.", "security": [],
        "responses": _answers(ANY_OBJ)}},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Liaison console API", "version": "1",
             "description": "The console's JSON API. Log in with POST /login (form) to get the session cookie."},
    "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "liaison_session"},
                                       "token": {"type": "http", "scheme": "bearer",
                                                 "description": "An API token from `liaison user token NAME`"}}},
    "security": [{"session": []}, {"token": []}],
    "paths": PATHS,
}


async def openapi(request: Request) -> Response:
    return JSONResponse(SPEC)


ROUTES = [Route("/api/openapi.json", openapi)]
