"""A private Postfix instance for mail integration tests (recipe: shared spec/runtime-recipes.md).

It plays an MSSanté operator's relay on 127.0.0.1 and a free port: STARTTLS
required (TLS ≥ 1.2), a client certificate required and checked against the test
CA, relaying only for trusted client certificates, and the virtual domains
``hopital-test.mssante.fr``, ``patient.mssante.fr`` and ``labo-test.mssante.fr``
delivered into one Maildir the test reads (``Delivered-To`` says for whom; one
file per recipient). ``inconnu@hopital-test.mssante.fr`` is unknown: RCPT gets
``550 5.1.1``. Mail for any other domain is bounced by an ``error`` transport
instead of being sent out.

Everything lives in a fresh directory under the system temp dir (config,
queue, data, Maildir, log, throw-away PKI), removed by :meth:`PostfixInstance.stop`.
Needs root and Debian's ``postfix`` (``deploy/scripts/prepare-postfix.sh``
installs it); without them the tests are skipped, unless
``LIAISON_REQUIRE_POSTFIX=1`` (CI), where they fail.

    postfix = postfix_fixture()          # in a test module: a session-scoped fixture

    def test_x(postfix):
        mailer = SmtpMailer("localhost", postfix.port, client_cert=postfix.pki.client_cert, ...)
        ...
        mails = postfix.wait_for_mail(1, timeout=20, match=lambda m: m.message["Message-ID"] == mid)
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.testing.local import free_port
from channels.testing.pki import TestPki, make_test_pki
from channels.testing.system import SBIN_PATH, process_alive, run_tool

__all__ = ["BUSY", "BUSY_REPLY", "DOMAINS", "LOCAL_DOMAIN", "UNDELIVERABLE", "UNKNOWN", "UNKNOWN_REPLY", "DeliveredMail", "PostfixInstance",
           "postfix_fixture", "postfix_unavailable", "require_postfix", "start_postfix"]

DOMAINS = ("hopital-test.mssante.fr", "patient.mssante.fr", "labo-test.mssante.fr")
UNKNOWN = ("inconnu@hopital-test.mssante.fr",)
LOCAL_DOMAIN = "local-test.mssante.fr"   # Postfix's local delivery: an unknown user there is accepted, then bounced
UNDELIVERABLE = f"absent@{LOCAL_DOMAIN}"  # ... so a sender that asked NOTIFY=FAILURE gets a real failed DSN
BUSY = ("occupe@hopital-test.mssante.fr",)
UNKNOWN_REPLY = "550 5.1.1 User unknown in virtual mailbox table"
BUSY_REPLY = "450 4.2.1 Mailbox busy, try again later"
MAIN_CF = Path("/etc/postfix/main.cf")

_MASTER_CF = """\
{port}      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass(frozen=True)
class DeliveredMail:
    """One file in the Maildir: one message as delivered to one recipient."""

    recipient: str            # the Delivered-To header Postfix's virtual agent adds
    path: Path
    raw: bytes
    message: EmailMessage


class PostfixInstance:
    """A running private Postfix; stop() ends it and removes its directory."""

    def __init__(self, root: Path, port: int, pki: TestPki, *, keep: bool = False):
        self.root = root
        self.port = port
        self.pki = pki
        self.conf_dir = root / "conf"
        self.maildir = root / "maildir" / "inbox"
        self.maillog = root / "maillog"
        self._keep = keep
        self._stopped = False

    def delivered(self) -> list[DeliveredMail]:
        """Every message delivered so far, oldest first."""
        folder = self.maildir / "new"
        if not folder.is_dir():
            return []
        mails = []
        for path in sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            raw = path.read_bytes()
            message = email.message_from_bytes(raw, policy=email.policy.default)
            mails.append(DeliveredMail(str(message.get("Delivered-To", "")), path, raw, message))
        return mails

    def wait_for_mail(self, count: int = 1, timeout: float = 20.0, *,
                      match: Callable[[DeliveredMail], bool] | None = None) -> list[DeliveredMail]:
        """Poll the Maildir until ``count`` matching messages are there; fail with the mail log after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.delivered() if match is None or match(m)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"Postfix delivered {len(found)} matching message(s), expected {count} "
                                     f"within {timeout}s; end of the mail log:\n{self.log_tail()}")
            time.sleep(0.05)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Poll the mail log until a line contains ``text``; return that line."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                lines = self.maillog.read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            found = [line for line in lines if text in line]
            if found:
                return found[-1]
            if time.monotonic() >= deadline:
                raise AssertionError(f"{text!r} not in the mail log after {timeout}s; end of it:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.maillog.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no mail log)"

    def stop(self) -> None:
        """Stop the instance, wait for its master process to exit, remove its directory."""
        if self._stopped:
            return
        self._stopped = True
        pid = _master_pid(self.root)
        run_tool(["postfix", "-c", str(self.conf_dir), "stop"], check=False)
        deadline = time.monotonic() + 15
        while pid is not None and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and process_alive(pid):
            run_tool(["postfix", "-c", str(self.conf_dir), "abort"], check=False)
        _deauthorise(self.conf_dir)
        if not self._keep:
            shutil.rmtree(self.root, ignore_errors=True)


def postfix_unavailable() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    if shutil.which("postfix", path=SBIN_PATH) is None or shutil.which("postconf", path=SBIN_PATH) is None:
        return "postfix is not installed (run deploy/scripts/prepare-postfix.sh as root)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    for user in ("postfix", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user!r} is missing (reinstall Debian's postfix package)"
    return None


def require_postfix() -> None:
    """Skip the test when Postfix cannot run, or fail when LIAISON_REQUIRE_POSTFIX=1."""
    reason = postfix_unavailable()
    if reason is None:
        return
    if os.environ.get("LIAISON_REQUIRE_POSTFIX") == "1":
        pytest.fail(f"LIAISON_REQUIRE_POSTFIX=1 but {reason}", pytrace=False)
    pytest.skip(f"Postfix mail tests skipped: {reason}")


def start_postfix(*, domains: Iterable[str] = DOMAINS, unknown: Iterable[str] = UNKNOWN,
                  busy: Iterable[str] = BUSY, pki: TestPki | None = None, keep: bool = False,
                  start_timeout: float = 20.0, mailboxes: Mapping[str, Path] | None = None) -> PostfixInstance:
    """Configure and start a private instance; return it once it answers on its port.

    ``mailboxes``: addresses delivered to a Maildir of their own (absolute path, writable by
    ``nobody``), e.g. the structure's mailbox in a private Dovecot (``tests/support/dovecot.py``),
    so that the DSNs Postfix writes to the sender and the MDNs sent to it land there.
    Every address of ``LOCAL_DOMAIN`` (Postfix's local delivery, no recipient table) is accepted
    at RCPT; one that names no user of the machine (``UNDELIVERABLE``) is then bounced, with a DSN.
    """
    root = Path(tempfile.mkdtemp(prefix="liaison-postfix-"))
    root.chmod(0o755)               # Postfix's daemons run as 'postfix' and must reach the queue
    instance: PostfixInstance | None = None
    try:
        instance = PostfixInstance(root, free_port(), pki or make_test_pki(root / "pki"), keep=keep)
        _configure(instance, tuple(domains), tuple(unknown), tuple(busy), dict(mailboxes or {}))
        _authorise(instance.conf_dir)
        if run_tool(["postfix", "-c", str(instance.conf_dir), "check"], check=False).returncode != 0:
            raise RuntimeError(f"postfix check failed: {_explain('check', instance)}")
        if run_tool(["postfix", "-c", str(instance.conf_dir), "start"], check=False).returncode != 0:
            raise RuntimeError(f"postfix start failed: {_explain('start', instance)}")
        _wait_for_banner(instance, start_timeout)
        return instance
    except BaseException:
        if instance is not None:
            instance.stop()
        elif not keep:
            shutil.rmtree(root, ignore_errors=True)
        raise


def postfix_fixture(**options):
    """A session-scoped pytest fixture yielding a started :class:`PostfixInstance`."""

    @pytest.fixture(scope="session")
    def _postfix():
        require_postfix()
        instance = start_postfix(**options)
        try:
            yield instance
        finally:
            instance.stop()

    return _postfix


# ------------------------------------------------------------------ helpers

def _configure(instance: PostfixInstance, domains: tuple[str, ...], unknown: tuple[str, ...],
               busy: tuple[str, ...], mailboxes: dict[str, Path] | None = None) -> None:
    root, conf, pki = instance.root, instance.conf_dir, instance.pki
    for sub in ("conf", "queue", "data", "maildir"):
        (root / sub).mkdir()
    postfix_user = pwd.getpwnam("postfix")
    nobody = pwd.getpwnam("nobody")
    os.chown(root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
    os.chown(root / "maildir", nobody.pw_uid, nobody.pw_gid)
    (conf / "master.cf").write_text(_MASTER_CF.format(port=instance.port))
    (conf / "main.cf").write_text("")
    rejects = "".join([*(f"{address}\t{UNKNOWN_REPLY}\n" for address in unknown),
                       *(f"{address}\t{BUSY_REPLY}\n" for address in busy)])
    (conf / "unknown_recipients").write_text(rejects)
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": root / "queue",
        "data_directory": root / "data",
        "maillog_file": instance.maillog,
        "maillog_file_prefixes": root,
        "myhostname": "mx.relay-test.mssante.fr",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mydestination": LOCAL_DOMAIN,
        "local_recipient_maps": "",
        "mailbox_size_limit": "0",
        "alias_maps": "",
        "alias_database": "",
        "virtual_mailbox_domains": " ".join(domains),
        "virtual_mailbox_base": root / "maildir",
        "virtual_mailbox_maps": "static:inbox/",
        "virtual_uid_maps": f"static:{nobody.pw_uid}",
        "virtual_gid_maps": f"static:{nobody.pw_gid}",
        "virtual_minimum_uid": str(min(nobody.pw_uid, 100)),
        "virtual_mailbox_limit": "0",
        "message_size_limit": str(64 * 1024 * 1024),
        "default_transport": "error:5.1.2 test relay: outside the test domains",
        "relay_transport": "error:5.1.2 test relay: outside the test domains",
        "smtpd_tls_cert_file": pki.server_cert,
        "smtpd_tls_key_file": pki.server_key,
        "smtpd_tls_CAfile": pki.ca_cert,
        "smtpd_tls_security_level": "encrypt",
        "smtpd_tls_ask_ccert": "yes",
        "smtpd_tls_req_ccert": "yes",
        "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
        "smtpd_tls_protocols": ">=TLSv1.2",
        "smtpd_tls_loglevel": "1",
        "smtpd_relay_restrictions": "permit_tls_all_clientcerts,reject_unauth_destination",
        "smtpd_recipient_restrictions": f"check_recipient_access texthash:{conf / 'unknown_recipients'}",
    }
    if mailboxes:
        # Absolute Maildirs: the base is "/" and every domain's catch-all names the shared inbox in full.
        inbox = str(root / "maildir" / "inbox").lstrip("/")
        lines = [f"{address}\t{str(path).lstrip('/')}/\n" for address, path in mailboxes.items()]
        lines += [f"@{domain}\t{inbox}/\n" for domain in domains]
        (conf / "mailboxes").write_text("".join(lines))
        settings["virtual_mailbox_base"] = "/"
        settings["virtual_mailbox_maps"] = f"texthash:{conf / 'mailboxes'}"
    run_tool(["postconf", "-c", str(conf), "-e", *(f"{k}={v}" for k, v in settings.items())])


def _authorise(conf_dir: Path) -> None:
    """List the instance in the default main.cf (alternate_config_directories), as Postfix wants."""
    if not MAIN_CF.exists():
        MAIN_CF.parent.mkdir(parents=True, exist_ok=True)
        MAIN_CF.write_text("# created by Liaison's tests: Postfix installed with 'No configuration'\n")
    current = run_tool(["postconf", "-h", "alternate_config_directories"]).stdout.split()
    if str(conf_dir) not in current:
        run_tool(["postconf", "-e", "alternate_config_directories=" + " ".join([*current, str(conf_dir)])])


def _deauthorise(conf_dir: Path) -> None:
    result = run_tool(["postconf", "-h", "alternate_config_directories"], check=False)
    current = result.stdout.split()
    if result.returncode == 0 and str(conf_dir) in current:
        remaining = [d for d in current if d != str(conf_dir)]
        if remaining:
            run_tool(["postconf", "-e", "alternate_config_directories=" + " ".join(remaining)], check=False)
        else:
            run_tool(["postconf", "-X", "alternate_config_directories"], check=False)


def _wait_for_banner(instance: PostfixInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", instance.port), timeout=2) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"Postfix did not answer on 127.0.0.1:{instance.port} within {timeout}s ({last}); "
                       f"mail log:\n{instance.log_tail()}")


def _explain(command: str, instance: PostfixInstance) -> str:
    """Postfix prints its errors only to a terminal or its log: rerun under script(1) to see them."""
    shown = run_tool(["script", "-qc", f"postfix -c {instance.conf_dir} {command}", "/dev/null"], check=False)
    return f"{shown.stdout.strip()}\nmail log:\n{instance.log_tail()}"


def _master_pid(root: Path) -> int | None:
    try:
        return int((root / "queue" / "pid" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


