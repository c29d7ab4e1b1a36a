"""Running the system's own daemons for tests: their tools (in ``/usr/sbin``), and whether a pid still lives.

Shared by the private Postfix and Dovecot the tests start on loopback, which drive Debian's
``postfix``/``postconf`` and ``dovecot``/``doveadm`` the same way.
"""

from __future__ import annotations

import os
import subprocess

#: PATH for the daemons' tools: Debian installs them in /usr/sbin, which a non-root PATH may lack.
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def run_tool(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    """Run a daemon's tool (60 s at most); with ``check``, a failure raises with its standard error."""
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PATH": SBIN_PATH}, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists (also when it belongs to another user, e.g. a daemon that dropped root)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
