"""How the bus contract is laid out on RabbitMQ: queue names, queue arguments, headers.

For a stage queue ``q`` and the prefix ``liaison.``:

- ``liaison.q``: durable **quorum** queue, the stage's work;
- ``liaison.q.parked``: durable quorum queue of parked messages (header ``x-park-reason``);
- ``liaison.q.retry.<ms>``: durable classic queue per retry delay, ``x-message-ttl=<ms>``,
  dead-lettering to the default exchange with routing key ``liaison.q``: a retried message
  waits there and comes back to the stage queue when its TTL expires. One queue per delay
  keeps the TTL uniform, so expiry at the head of the queue is always on time.

Quorum retry queues (message TTL and at-least-once dead-lettering, RabbitMQ ≥ 3.10) were tried on
a cluster and given up: on 3.10 a quorum queue drops an expired message at its head only when the
queue handles another command, so the last retries of a burst stayed in their delay queue for good
(the fault suite's journal-full scenario: 3 jobs stuck, none lost).

The broker's move from a retry queue back to the stage queue is not confirmed internally
(RabbitMQ's default at-most-once dead-lettering): a retried message could be lost if the
stage queue has no quorum at the instant its delay ends. Quorum retry queues with
``dead-letter-strategy=at-least-once`` would close that gap at the cost of more broker work.

No ``x-delivery-limit`` is set: on 3.x quorum queues redeliver without limit (on 4.x see
deploy/rabbitmq/README.md).

Headers: the envelope's headers are the string-valued application headers. ``x-attempt``
carries the retry count on the wire (absent means 0) and becomes ``Envelope.attempt``;
the broker's own bookkeeping (``x-death``, ``x-first-death-*``, ``x-delivery-count``) is
left out, so a stage that forwards headers does not forward them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.ports import Envelope

ATTEMPT_HEADER = "x-attempt"
LAST_ERROR_HEADER = "x-last-error"
MAX_REASON = 1000                       # characters of a retry or park reason kept in the headers

MAIN_ARGUMENTS = {"x-queue-type": "quorum"}
PARKED_ARGUMENTS = {"x-queue-type": "quorum"}
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count", ATTEMPT_HEADER)




def parked_name(name: str) -> str:
    return f"{name}.parked"


def retry_queue(name: str, delay: float) -> tuple[str, dict[str, Any]]:
    """The delay queue for ``delay`` seconds in front of the stage queue ``name``."""
    ms = max(1, round(delay * 1000))
    return f"{name}.retry.{ms}", {
        "x-queue-type": "classic",
        "x-message-ttl": ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": name,
    }


def wire_headers(headers: Mapping[str, str], attempt: int) -> dict[str, str]:
    """Headers to send: the envelope's, plus ``x-attempt`` when it is not 0."""
    out = {k: v for k, v in headers.items() if k != ATTEMPT_HEADER}
    if attempt:
        out[ATTEMPT_HEADER] = str(attempt)
    return out


def envelope(body: bytes, message_id: str | None, raw: Mapping[str, Any] | None) -> Envelope:
    """The envelope of a received AMQP message."""
    headers: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if key.startswith(_BROKER_HEADERS):
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            headers[key] = value
    return Envelope(body=body, message_id=message_id or "", headers=headers,
                    attempt=parse_attempt((raw or {}).get(ATTEMPT_HEADER)))


def parse_attempt(value: Any) -> int:
    """The ``x-attempt`` header as a count; anything unreadable counts as 0."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0
