"""How the bus contract is laid out on RabbitMQ: queue names, queue arguments, headers.

For a stage queue ``q`` and the prefix ``liaison.``:

- ``liaison.q``: durable **quorum** queue, the stage's work;
- ``liaison.q.parked``: durable quorum queue of parked messages (header ``x-park-reason``);
- ``liaison.q.retry.<ms>``: durable queue per retry delay, ``x-message-ttl=<ms>``,
  dead-lettering to the default exchange with routing key ``liaison.q``: a retried message
  waits there and comes back to the stage queue when its TTL expires. One queue per delay
  keeps the TTL uniform, so expiry at the head of the queue is always on time.

On one node the retry queues are classic queues. On a cluster (the bus given several node
URLs) they are quorum queues too (message TTL and dead-lettering on quorum queues need
RabbitMQ ≥ 3.10), with ``x-dead-letter-strategy=at-least-once`` (which needs
``x-overflow=reject-publish``): the move back to the stage queue is then confirmed inside the
broker, so a retried message survives the loss of any one node, the stage queue's leader
included, instead of waiting on the one node a classic queue lives on. A classic retry queue's
move is at-most-once (RabbitMQ's default): a retried message could be lost if the stage queue
had no quorum at the instant its delay ended.

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


def retry_queue(name: str, delay: float, *, quorum: bool = False) -> tuple[str, dict[str, Any]]:
    """The delay queue for ``delay`` seconds in front of the stage queue ``name`` (quorum: on a cluster)."""
    ms = max(1, round(delay * 1000))
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum" if quorum else "classic",
        "x-message-ttl": ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": name,
    }
    if quorum:
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return f"{name}.retry.{ms}", arguments


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
