"""``liaison run`` serves the console when ``[console]`` is configured, and stops it with the engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from channels.testing.local import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_liaison_run_serves_the_console_beside_the_engine(tmp_path):
    port = free_port()
    toml = tmp_path / "liaison.toml"
    toml.write_text(f'[engine]\njournal = "sqlite://{tmp_path}/journal.sqlite"\nbus = "embedded://{tmp_path}/bus.sqlite"\n'
                    'cda_schema_required = false\n[render]\nschematrons = "off"\n[[listeners]]\nport = 0\n'
                    f'[console]\nport = {port}\nusers = "users.sqlite"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LIAISON_JOURNAL_KEY", None)
    engine = subprocess.Popen([sys.executable, "-m", "channels.app.cli.main", "run", "-c", str(toml)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert engine.poll() is None, engine.stderr.read().decode()
                assert time.monotonic() < deadline, "the console never answered"
                time.sleep(0.1)
        login = httpx.get(f"http://127.0.0.1:{port}/messages", timeout=2)
    finally:
        engine.send_signal(signal.SIGTERM)
        _, err = engine.communicate(timeout=60)
    assert ready.json() == {"status": "ready", "journal": "ok", "bus": "ok"}
    assert login.status_code == 303 and login.headers["location"].startswith("/login")
    assert engine.returncode == 0, err.decode()
    assert (tmp_path / "users.sqlite").exists()
