"""The core is importable with only its own dependencies: no adapter, no volet, no network library.

Checked in a fresh interpreter where importing ``channels``, ``mappings``,
``aiohttp``, ``httpx``, ``signxml``, ``aio_pika`` or ``aiosmtplib`` raises, so a
stray import anywhere in ``router`` (even a lazy one run at import time) fails
here; ``lint-imports`` (run by the test command) checks the same rule
statically, including imports inside functions.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("channels", "mappings", "aiohttp", "httpx", "signxml", "aio_pika", "aiosmtplib")

PROBE = f"""
import importlib, pkgutil, sys

FORBIDDEN = {FORBIDDEN!r}

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"the core imported {{name}}")
        return None

sys.meta_path.insert(0, Refuse())
import router
names = sorted(m.name for m in pkgutil.walk_packages(router.__path__, "router."))
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_core_module_imports_without_adapters_volets_or_network_libraries():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 40          # every module of router/ was imported, not just the package


def test_the_probe_refuses_what_it_should():
    """The refusing import hook really refuses: importing an adapter under it fails."""
    probe = PROBE.replace("import router\n", "import channels.xds.client\nimport router\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "the core imported channels" in done.stderr
