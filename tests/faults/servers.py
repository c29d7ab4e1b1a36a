"""The fault suite's own servers: a 3-node RabbitMQ cluster, a PostgreSQL cluster, a Postfix relay.

They are the suite's alone, so that it may kill and restart them at will: the RabbitMQ cluster
``liaison-faults-{a,b,c}@localhost`` on 127.0.0.1:5801-5803 (distribution ports 25801-25803;
``deploy/scripts/start-rabbitmq-cluster.sh`` with ``LIAISON_RABBITMQ_CLUSTER_NAME`` and ``_PORT``),
never the test command's shared one on 5701-5703 nor the broker on 5672; a PostgreSQL cluster under a
fresh ``/tmp`` directory (``deploy/scripts/start-postgres.sh``); a private Postfix
(``tests/support/postfix.py``). Each is started once per test session and stopped at its end, however
the session ends; a RabbitMQ cluster of that name that already ran is used and left running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.postfix import PostfixInstance, start_postfix

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "scripts"
CLUSTER_NAME = os.environ.get("LIAISON_FAULTS_CLUSTER_NAME", "liaison-faults")
CLUSTER_PORT = int(os.environ.get("LIAISON_FAULTS_CLUSTER_PORT", "5801"))
LETTERS = ("a", "b", "c")
_SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PATH": _SBIN, **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout[-2000:]}"
                           f"\n{result.stderr[-2000:]}")
    return result.stdout


# --------------------------------------------------------------------------- RabbitMQ


class RabbitCluster:
    """The suite's three RabbitMQ nodes (see the module docstring)."""

    def __init__(self, name: str = CLUSTER_NAME, port: int = CLUSTER_PORT):
        self.name = name
        self.port = port
        self.started_here = False
        self._env = {"LIAISON_RABBITMQ_CLUSTER_NAME": name, "LIAISON_RABBITMQ_CLUSTER_PORT": str(port)}

    def node(self, letter: str) -> str:
        return f"{self.name}-{letter}@localhost"

    def node_port(self, letter: str) -> int:
        return self.port + LETTERS.index(letter)

    def running(self) -> bool:
        return Path(f"/run/{self.name}-rabbitmq-cluster").is_file()

    def start(self) -> None:
        """Start the three nodes (or those of them that are down) and wait for one cluster of three."""
        self.started_here = self.started_here or not self.running()
        _run([str(SCRIPTS / "start-rabbitmq-cluster.sh")], env=self._env, timeout=400)

    def stop(self) -> None:
        _run([str(SCRIPTS / "stop-rabbitmq-cluster.sh")], env=self._env, timeout=300)

    def ctl(self, *args: str, letter: str = "a") -> str:
        return _run(["rabbitmqctl", "-q", "-n", self.node(letter), *args], env={"ERL_EPMD_ADDRESS": "127.0.0.1"},
                    timeout=120)

    def urls(self, vhost: str) -> list[str]:
        return [f"amqp://guest:guest@127.0.0.1:{self.node_port(letter)}/{vhost}" for letter in LETTERS]

    def add_vhost(self, vhost: str) -> None:
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        try:
            self.ctl("delete_vhost", vhost)
        except RuntimeError:
            pass                                         # a node down at the end: the vhost goes with the cluster

    def kill_node(self, letter: str) -> int:
        """``kill -9`` of the node's Erlang VM (found by the RABBITMQ_NODENAME in its environment)."""
        pids = _node_pids(self.node(letter))
        if not pids:
            raise RuntimeError(f"no VM found for {self.node(letter)}")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)


def _node_pids(node: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "beam.smp":
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RABBITMQ_NODENAME={node}".encode() in environ:
            found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """A PostgreSQL cluster of the suite's own under /tmp (start-postgres.sh); restartable."""

    def __init__(self, parent: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="liaison-faults-pg-", dir=str(parent or "/tmp")))
        self.url = ""

    def start(self) -> None:
        _run([str(SCRIPTS / "start-postgres.sh"), str(self.dir)], timeout=180)
        self.url = (self.dir / "url").read_text().strip()

    def stop(self) -> None:
        _run([str(SCRIPTS / "stop-postgres.sh"), str(self.dir)], timeout=120)

    def configure(self, **settings: str) -> None:
        """Append settings to postgresql.conf and restart for them."""
        with (self.dir / "data" / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.restart()

    def running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def start_again(self) -> None:
        """``pg_ctl start`` of a server that stopped (it had stopped itself, say)."""
        self._pg_ctl("start")

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 and self.dir.stat().st_uid != 0 else []
        return subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-t", "60",
                               "-l", str(self.dir / "postgres.log"), *args], check=check, capture_output=True,
                              timeout=120, cwd="/")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: every session is cut; ``immediate`` is a crash (recovery from the WAL)."""
        self._pg_ctl("-m", mode, "restart")

    def new_schema(self, name: str) -> str:
        """A schema of its own for one scenario: the URL that makes it the journal's."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"


class SmallVolume:
    """A tmpfs of ``size`` mounted under /tmp for one scenario, that :meth:`fill` fills to the last byte.

    :meth:`empty` frees it again. :meth:`remove` unmounts it and deletes the mount point.
    """

    def __init__(self, size: str = "192m") -> None:
        self.path = Path(tempfile.mkdtemp(prefix="liaison-faults-volume-", dir="/tmp"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(self.path)], check=True,
                       capture_output=True, timeout=30)
        self.filler = self.path / "filler"

    def fill(self) -> None:
        """Write zeros until the volume refuses even 4 KiB more."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 12):
                block = b"\0" * size
                try:
                    while True:
                        os.write(fd, block)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def empty(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=60)
        with contextlib.suppress(OSError):
            self.path.rmdir()


# --------------------------------------------------------------------------- Postfix


def postfix_stop(instance: PostfixInstance) -> None:
    """Stop the relay's master (it refuses connections until :func:`postfix_start`)."""
    subprocess.run(["postfix", "-c", str(instance.conf_dir), "stop"], capture_output=True, timeout=60,
                   env={**os.environ, "PATH": _SBIN})
    deadline = time.monotonic() + 20
    while _port_open(instance.port) and time.monotonic() < deadline:
        time.sleep(0.1)


def postfix_start(instance: PostfixInstance) -> None:
    subprocess.run(["postfix", "-c", str(instance.conf_dir), "start"], capture_output=True, timeout=60,
                   env={**os.environ, "PATH": _SBIN}, check=True)
    deadline = time.monotonic() + 20
    while not _port_open(instance.port) and time.monotonic() < deadline:
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------- all of them


@dataclass
class Servers:
    rabbit: RabbitCluster
    postgres: Postgres
    postfix: PostfixInstance


def unavailable() -> str | None:
    """Why the suite's servers cannot run here, or None."""
    if os.geteuid() != 0:
        return "the fault suite starts its own RabbitMQ nodes, PostgreSQL and Postfix: it needs root"
    for tool in ("rabbitmq-server", "rabbitmqctl", "postfix"):
        if shutil.which(tool, path=_SBIN) is None:
            return f"{tool} is not installed (deploy/scripts/test.sh installs it)"
    return None


def start_servers(stops: list) -> Servers:
    """Start the three servers (RabbitMQ in the background while the others start).

    How to stop each one is appended to ``stops`` before it starts, so a failed start leaves nothing.
    """
    rabbit = RabbitCluster()
    if not rabbit.running():
        stops.append(rabbit.stop)
    booting = subprocess.Popen([str(SCRIPTS / "start-rabbitmq-cluster.sh")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PATH": _SBIN, **rabbit._env})
    postgres = Postgres()
    stops.append(postgres.stop)
    postgres.start()
    postfix = start_postfix()
    stops.append(postfix.stop)
    try:
        output, _ = booting.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        booting.kill()
        raise
    if booting.returncode != 0:
        raise RuntimeError(f"the fault suite's RabbitMQ cluster did not start:\n{output[-3000:]}")
    return Servers(rabbit, postgres, postfix)
