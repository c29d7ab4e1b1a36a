"""``liaison send``: send HL7 files over MLLP and print what the peer answered.

A file may hold one or several messages, each starting with ``MSH``, with CR,
LF or CRLF segment endings (LF inside a field is kept, as in
:mod:`router.hl7.segments`); stray MLLP framing bytes are removed. Each message
goes out with ``\\r`` terminators over one persistent connection, and one line
per message is printed::

    msg.hl7#1 MSH-10=015 MSA-1=AA MSA-2=015
    msg.hl7#2 MSH-10=016 MSA-1=AE MSA-2=016 MSA-3="..." ERR=902 Identifiant de patient inconnu
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path

from channels.mllp.sender import MllpSender
from router.errors import EngineError

_TERMINATOR = re.compile(rb"\r\n|\n(?=[\r\n]*[A-Z][A-Z0-9]{2}[|^~\\&#!])|\n(?=[\s\x00]*\Z)")
_MESSAGE_START = re.compile(rb"(?:^|\r)(?=MSH[^A-Za-z0-9\r\n])")


def split_messages(data: bytes) -> list[bytes]:
    """Split a file's bytes into ``\\r``-terminated messages (each starting with MSH)."""
    data = data.removeprefix(b"\xef\xbb\xbf").replace(b"\x0b", b"").replace(b"\x1c", b"")
    data = _TERMINATOR.sub(b"\r", data)
    starts = [m.end() for m in _MESSAGE_START.finditer(data)]
    messages = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(data)
        segments = [s for s in data[start:stop].split(b"\r") if s.strip()]
        if segments:
            messages.append(b"\r".join(segments) + b"\r")
    return messages


async def send_files(host: str, port: int, paths: Iterable[str | Path], *, timeout: float = 10.0,
                     ssl_context: ssl.SSLContext | None = None, out: Callable[[str], object] = print) -> int:
    """Send every message of every file in order; print one line each; return how many were not AA.

    Every file is read before the first message is sent: an unreadable one raises its OSError
    (with its ``filename``) and nothing is sent.
    """
    not_accepted = 0
    batches = [(Path(path), split_messages(Path(path).read_bytes())) for path in paths]
    async with MllpSender(host, port, timeout=timeout, ssl_context=ssl_context) as sender:
        for path, messages in batches:
            if not messages:
                out(f"{path.name}: no HL7 message (no segment starting with MSH)")
                not_accepted += 1
                continue
            for n, message in enumerate(messages, 1):
                label = f"{path.name}#{n}"
                try:
                    reply, _ = await sender.exchange(message)
                except EngineError as exc:
                    out(f"{label} ERROR {exc.reason}")
                    not_accepted += 1
                    continue
                line = f"{label} MSH-10={_msh10(message)} MSA-1={reply.code} MSA-2={reply.control_id}"
                if reply.text:
                    line += f' MSA-3="{reply.text}"'
                if reply.error_code or reply.error_text:
                    line += f" ERR={reply.error_code} {reply.error_text}".rstrip()
                out(line)
                if reply.code != "AA":
                    not_accepted += 1
    return not_accepted


def _msh10(message: bytes) -> str:
    line = message.split(b"\r", 1)[0]
    fields = line.split(line[3:4])
    return fields[9].decode("ascii", "replace") if len(fields) > 9 else ""
