"""Translation of aio-pika / aiormq failures into ``BusUnavailable``, at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiormq.exceptions
import pamqp.exceptions
from aio_pika.exceptions import AMQPError

from router.errors import BusUnavailable

#: What the AMQP libraries raise when the broker cannot take or give messages: connection
#: refused or lost, channel closed by the broker (including a refused declaration), a nacked
#: or returned publish, a timeout waiting for a confirm, and a connection not (yet) ready.
AMQP_FAILURES = (AMQPError, aiormq.exceptions.ChannelInvalidStateError, pamqp.exceptions.PAMQPException,
                 ConnectionError, OSError, TimeoutError, RuntimeError)


@contextmanager
def bus_errors(doing: str) -> Iterator[None]:
    """Wrap calls into aio-pika (never user code): their failures become BusUnavailable."""
    try:
        yield
    except BusUnavailable:
        raise
    except AMQP_FAILURES as exc:
        raise BusUnavailable(f"RabbitMQ: {doing}: {type(exc).__name__}: {exc}") from exc
