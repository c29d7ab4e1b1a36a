"""structlog set-up for the command line: one JSON object a line (key=value lines on a terminal).

The engine logs with structlog; its libraries (aiormq and aio-pika, asyncio,
aiosmtplib, httpx...) log with the standard library, and Python's warnings go
there too. Both end in the same place: structlog hands its events to the root
logger, whose one handler renders every record with structlog's
``ProcessorFormatter``. A library's record, its traceback included (aiormq's
``ConnectionClosed`` when RabbitMQ restarts), is therefore one JSON line with
``logger``, ``level``, ``timestamp`` and ``exception`` fields, never plain text
among the JSON lines.
"""

from __future__ import annotations

import logging
import sys

import structlog

_HANDLER_MARK = "_liaison_handler"


def configure_logging(level: str = "info", *, json: bool | None = None, stream=sys.stderr) -> None:
    """Log at ``level`` and above to ``stream``: structlog events and standard library records alike."""
    if json is None:
        json = not stream.isatty()
    number = logging.getLevelName(level.upper())
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)     # the traceback as one "exception" string
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)  # formats exc_info itself
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)         # configured again (tests, several commands in one process)
    root.addHandler(handler)
    root.setLevel(number)
    logging.captureWarnings(True)       # warnings.warn(...) becomes a record of the "py.warnings" logger
