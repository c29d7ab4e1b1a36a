"""Every log line is one JSON object: structlog's events and the standard library's records alike."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from channels.app.logs import configure_logging

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stream():
    """A StringIO to log to (tests/conftest.py restores the logging set-up after each test)."""
    return io.StringIO()


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]     # fails on any non-JSON line


def test_a_library_traceback_is_one_json_line_among_ours(stream):
    configure_logging("info", json=True, stream=stream)
    structlog.get_logger("channels.amqp.bus").info("bus.connected", url="amqp://127.0.0.1:5672/")
    try:
        raise ConnectionResetError("CONNECTION_FORCED - broker forced connection closure")
    except ConnectionResetError:
        logging.getLogger("aiormq.connection").exception("Unexpected connection close from remote")
    logging.getLogger("aio_pika.robust_connection").info("Connection attempt to %s failed, reconnecting in %d s",
                                                         "127.0.0.1", 5)
    records = lines(stream)
    assert [r["event"] for r in records] == ["bus.connected", "Unexpected connection close from remote",
                                             "Connection attempt to 127.0.0.1 failed, reconnecting in 5 s"]
    closed = records[1]
    assert closed["logger"] == "aiormq.connection" and closed["level"] == "error" and "timestamp" in closed
    assert closed["exception"].startswith("Traceback") and "CONNECTION_FORCED" in closed["exception"]


def test_the_level_applies_to_library_records_too(stream):
    configure_logging("warning", json=True, stream=stream)
    logging.getLogger("aiormq").info("chatty")
    structlog.get_logger().info("also chatty")
    logging.getLogger("aiormq").warning("kept")
    assert [r["event"] for r in lines(stream)] == ["kept"]


def test_in_a_fresh_process_warnings_and_library_tracebacks_are_json_lines_on_stderr():
    script = """
import logging, warnings
from channels.app.logs import configure_logging
configure_logging("info", json=True)
warnings.warn("an old API", UserWarning)
try:
    raise ConnectionResetError("CONNECTION_FORCED")
except ConnectionResetError:
    logging.getLogger("aiormq.connection").exception("Unexpected connection close from remote")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["logger"] for r in records] == ["py.warnings", "aiormq.connection"]
    assert "CONNECTION_FORCED" in records[1]["exception"]


def test_configured_twice_logs_each_line_once(stream):
    configure_logging("info", json=True, stream=stream)
    configure_logging("info", json=True, stream=stream)
    logging.getLogger("aiormq").warning("once")
    assert len(lines(stream)) == 1
