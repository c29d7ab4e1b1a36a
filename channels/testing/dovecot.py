"""A private Dovecot instance holding the structure's MSSanté mailbox, for the notice tests.

It plays the operator's IMAP server on 127.0.0.1 and a free port: implicit TLS
(TLS ≥ 1.2) with the tests' own PKI, a client certificate required and checked
against the test CA (``ssl_verify_client_cert``, ``auth_ssl_require_client_cert``),
one passwd-file user per mailbox, and each mailbox a Maildir under the
instance's temp directory, owned by ``nobody`` so that a private Postfix
(``tests/support/postfix.py``, ``mailboxes=``) delivers into it with its
virtual agent: DSNs and MDNs sent to the structure's address land there.

Everything (config, base_dir, state, Maildirs, log) lives in a fresh directory
under the system temp dir, removed by :meth:`DovecotInstance.stop`, which waits
for the master process to exit: nothing is left running. Needs root and Debian's
``dovecot-imapd`` (:func:`dovecot_unavailable` says why not); the tests skip or fail through
``tests/support/dovecot.py``. For tests and benchmarks only.

    dovecot = start_dovecot({"pfi@hopital-test.mssante.fr": "secret"}, pki=pki)
    dovecot.maildir("pfi@hopital-test.mssante.fr")     # where Postfix must deliver
    dovecot.restart()                                   # same port, same mail
    dovecot.stop()
"""

from __future__ import annotations

import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from channels.notices.imap import imap_utf7
from channels.testing.local import free_port
from channels.testing.pki import TestPki, make_test_pki
from channels.testing.system import SBIN_PATH, process_alive, run_tool

__all__ = ["DovecotInstance", "dovecot_unavailable", "start_dovecot"]


_CONFIG = """\
instance_name = liaison-test-{port}
base_dir = {root}/run
state_dir = {root}/state
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
ssl = required
ssl_cert = <{pki.server_cert}
ssl_key = <{pki.server_key}
ssl_ca = <{pki.ca_cert}
ssl_verify_client_cert = yes
ssl_require_crl = no
ssl_min_protocol = TLSv1.2
auth_ssl_require_client_cert = yes
auth_mechanisms = plain
disable_plaintext_auth = yes
mail_location = maildir:{root}/mail/%u/Maildir
first_valid_uid = 1
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  imap_idle_notify_interval = 2 mins
}}
"""


class DovecotInstance:
    """A running private Dovecot; stop() ends it and removes its directory."""

    def __init__(self, root: Path, port: int, pki: TestPki, users: Mapping[str, str]):
        self.root = root
        self.port = port
        self.pki = pki
        self.users = dict(users)
        self.config = root / "dovecot.conf"
        self.log = root / "dovecot.log"
        self._stopped = False

    def maildir(self, user: str) -> Path:
        """The user's Maildir (what Postfix's virtual agent delivers into)."""
        return self.root / "mail" / user / "Maildir"

    def messages(self, user: str, folder: str = "") -> list[Path]:
        """The files of a folder (``""``: INBOX; ``Liaison/Traités``...), new and cur."""
        base = self.maildir(user)
        if folder:
            base = base / ("." + _maildir_name(folder))
        return sorted(p for sub in ("new", "cur") if (base / sub).is_dir() for p in (base / sub).iterdir())

    def start(self, timeout: float = 20.0) -> None:
        # The master daemonizes; its output goes to a file, not to pipes it would keep open.
        with open(self.root / "start.out", "wb") as out:
            code = subprocess.run(["dovecot", "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env={**os.environ, "PATH": SBIN_PATH}, timeout=60).returncode
        if code != 0:
            said = (self.root / "start.out").read_text(errors="replace").strip()
            raise RuntimeError(f"dovecot did not start ({code}): {said}\n{self.log_tail()}")
        _wait_for_port(self, timeout)

    def restart(self) -> None:
        """Stop the server (its connections drop), then start it again on the same port with the same mail."""
        self._halt()
        self.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._halt()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no dovecot log)"

    def _halt(self) -> None:
        pid = self._master_pid()
        run_tool(["doveadm", "-c", str(self.config), "stop"], check=False)
        deadline = time.monotonic() + 15
        while pid is not None and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and process_alive(pid):
            os.kill(pid, signal.SIGKILL)
        # The master's children (auth, imap-login, imap...) exit just after it: wait for them, so nothing is left.
        deadline = time.monotonic() + 10
        while self._children() and time.monotonic() < deadline:
            time.sleep(0.05)
        for child in self._children():
            os.kill(child, signal.SIGKILL)

    def _children(self) -> list[int]:
        """Processes of this instance (their title carries its instance name)."""
        mark = f"dovecot-liaison-test-{self.port}/".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "cmdline").read_bytes().startswith(mark):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def _master_pid(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def dovecot_unavailable() -> str | None:
    """Why a private Dovecot cannot run here, or None when it can."""
    if shutil.which("dovecot", path=SBIN_PATH) is None or shutil.which("doveadm", path=SBIN_PATH) is None:
        return "dovecot is not installed (apt-get install dovecot-imapd)"
    if os.geteuid() != 0:
        return "a private Dovecot instance needs root"
    for user in ("dovecot", "dovenull", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user!r} is missing (reinstall Debian's dovecot-core package)"
    return None


def start_dovecot(users: Mapping[str, str], *, pki: TestPki | None = None) -> DovecotInstance:
    """Configure and start a private instance with these ``{user: password}``; return it once it listens."""
    root = Path(tempfile.mkdtemp(prefix="liaison-dovecot-"))
    root.chmod(0o755)                 # dovecot's and nobody's processes must reach the config and the mail
    instance: DovecotInstance | None = None
    try:
        instance = DovecotInstance(root, free_port(), pki or make_test_pki(root / "pki"), users)
        _configure(instance)
        instance.start()
        return instance
    except BaseException:
        if instance is not None:
            instance.stop()
        else:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _configure(instance: DovecotInstance) -> None:
    root = instance.root
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrgid(nobody.pw_gid)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    os.chown(root / "mail", nobody.pw_uid, nobody.pw_gid)
    for user in instance.users:
        for folder in ("cur", "new", "tmp"):
            (instance.maildir(user) / folder).mkdir(parents=True, exist_ok=True)
        for path in (root / "mail" / user, *(root / "mail" / user).rglob("*")):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    users = root / "users"
    users.write_text("".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in instance.users.items()))
    users.chmod(0o640)
    os.chown(users, 0, grp.getgrnam("dovecot").gr_gid)
    instance.config.write_text(_CONFIG.format(root=root, port=instance.port, pki=instance.pki, uid=nobody.pw_uid,
                                              gid=nogroup.gr_gid))
    for key in (instance.pki.server_key,):
        Path(key).chmod(0o600)


def _wait_for_port(instance: DovecotInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", instance.port), timeout=2):
                return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"Dovecot did not listen on 127.0.0.1:{instance.port} within {timeout}s ({last}); "
                       f"log:\n{instance.log_tail()}")


def _maildir_name(folder: str) -> str:
    """Dovecot's Maildir++ folder name: ``Liaison/Traités`` → ``Liaison.Trait&AOk-s``."""
    return imap_utf7(folder).replace("/", ".")


