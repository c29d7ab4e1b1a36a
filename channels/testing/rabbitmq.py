"""A RabbitMQ vhost of one's own for a test or a benchmark: its queues go when it is deleted."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit


class RabbitmqctlMissing(RuntimeError):
    """``rabbitmqctl`` is not installed: no vhost can be made."""


@contextlib.contextmanager
def rabbitmq_vhost(amqp_url: str, prefix: str) -> Iterator[str]:
    """Create the vhost ``<prefix>-<random>`` for ``amqp_url``'s user; yield the URL to reach it; delete it."""
    rabbitmqctl = shutil.which("rabbitmqctl", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if rabbitmqctl is None:
        raise RabbitmqctlMissing("rabbitmqctl is not installed: cannot make a vhost of one's own")
    parts = urlsplit(amqp_url)
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"

    def ctl(*args: str) -> None:
        subprocess.run([rabbitmqctl, *args], check=True, capture_output=True, timeout=60)

    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        ctl("delete_vhost", vhost)
