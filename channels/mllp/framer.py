"""Incremental MLLP framer: bytes in, frame events out, resynchronising on any damage.

MLLP wraps each message as ``0x0B <message> 0x1C 0x0D``. Real senders add CR,
LF or NUL between frames, keep-alive bytes, or cut a frame short; python-hl7
drops the whole frame on any byte before ``0x0B`` and hl7apy reads byte by byte
with no size limit (spec/hl7-libraries.md P2, P3, A2). This framer:

* skips and counts bytes before ``0x0B``; junk that is not whitespace/NUL is
  reported as :class:`Junk` so the listener can log it;
* enforces ``max_frame_bytes``: a longer frame is discarded up to its end and
  reported once as :class:`Oversize` with its first 4 KiB (enough to read the
  MSH and NACK it) and its full size; the stream stays usable;
* reports a frame interrupted by a new ``0x0B`` as :class:`Truncated` and
  starts the new frame; :meth:`MllpFramer.eof` reports a frame cut by the end
  of the connection.

It does no I/O, so it serves the listener, the sender and the tests alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.ingest import MAX_FRAME_BYTES

START = b"\x0b"
END = b"\x1c\x0d"
#: The first bytes of a frame, enough to read its MSH: kept of an oversize frame to NACK it, and
#: what the listener reads a fallback NACK from.
MSH_HEAD_BYTES = 4096
_WHITESPACE = b" \t\r\n\x00"
_JUNK_SAMPLE = 64


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete message (the bytes between 0x0B and 0x1C 0x0D)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Junk:
    """Bytes outside any frame that are not whitespace/NUL (``sample`` = first 64 bytes; never log it)."""

    size: int
    sample: bytes


@dataclass(frozen=True, slots=True)
class Oversize:
    """A frame longer than the limit, discarded; ``prefix`` = its first 4 KiB, ``size`` = its full length."""

    prefix: bytes
    size: int


@dataclass(frozen=True, slots=True)
class Truncated:
    """A frame cut short (new 0x0B, or end of stream); ``data`` = what arrived (at most 4 KiB if oversize)."""

    data: bytes
    size: int


Event = Frame | Junk | Oversize | Truncated

_IDLE, _FRAME, _DISCARD = 0, 1, 2


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP framing."""
    return START + payload + END


class MllpFramer:
    """Feed it bytes as they arrive; it returns the events completed by them."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES):
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._state = _IDLE
        self._scan = 0                 # where to resume searching in _buf (frame state)
        self._prefix = b""             # first bytes of a discarded frame
        self._discarded = 0            # bytes of the discarded frame so far
        # counters, cumulative
        self.frames = 0
        self.junk_bytes = 0
        self.oversize = 0
        self.truncated = 0

    @property
    def in_frame(self) -> bool:
        """True when a frame has started and not ended (a timeout now cuts a message)."""
        return self._state != _IDLE

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        buf = self._buf
        buf += data
        pos = 0
        while True:
            if self._state == _IDLE:
                start = buf.find(START, pos)
                stop = start if start >= 0 else len(buf)
                if stop > pos:
                    self._junk(buf, pos, stop, events)
                if start < 0:
                    pos = len(buf)
                    break
                pos = start + 1
                self._state, self._scan = _FRAME, pos
            elif self._state == _FRAME:
                end = buf.find(END, self._scan)
                restart = buf.find(START, self._scan, end if end >= 0 else len(buf))
                if restart >= 0:
                    self._cut(_copy(buf, pos, restart), restart - pos, events)
                    pos = self._scan = restart + 1
                    continue
                if end >= 0:
                    size = end - pos
                    if size > self.max_frame_bytes:
                        self.oversize += 1
                        events.append(Oversize(bytes(buf[pos:min(end, pos + MSH_HEAD_BYTES)]), size))
                    else:
                        self.frames += 1
                        events.append(Frame(_copy(buf, pos, end)))
                    pos = end + 2
                    self._state = _IDLE
                    continue
                if len(buf) - pos > self.max_frame_bytes:
                    keep = len(buf) - 1 if buf.endswith(b"\x1c") else len(buf)   # maybe half the end marker
                    self._prefix = bytes(buf[pos:min(keep, pos + MSH_HEAD_BYTES)])
                    self._discarded = keep - pos
                    self._state = _DISCARD
                    pos = keep
                    break
                self._scan = max(pos, len(buf) - 1)
                break
            else:  # _DISCARD: drop everything up to the end marker
                end = buf.find(END, pos)
                restart = buf.find(START, pos, end if end >= 0 else len(buf))
                if restart >= 0:
                    self._discarded += restart - pos
                    self._cut(self._prefix, self._discarded, events)
                    self._prefix, self._discarded = b"", 0
                    pos = self._scan = restart + 1
                    self._state = _FRAME
                    continue
                if end >= 0:
                    self._discarded += end - pos
                    self.oversize += 1
                    events.append(Oversize(self._prefix, self._discarded))
                    self._prefix, self._discarded = b"", 0
                    pos = end + 2
                    self._state = _IDLE
                    continue
                keep = len(buf) - 1 if buf.endswith(b"\x1c") else len(buf)
                self._discarded += keep - pos
                pos = keep
                break
        if pos:
            del buf[:pos]
            if self._state == _FRAME:
                self._scan -= pos
        return events

    def eof(self) -> list[Event]:
        """The stream ended: report a frame in progress as truncated and reset."""
        events: list[Event] = []
        if self._state == _FRAME:
            self._cut(bytes(self._buf), len(self._buf), events)
        elif self._state == _DISCARD:
            self._cut(self._prefix, self._discarded + len(self._buf), events)
        self._buf.clear()
        self._state, self._scan, self._prefix, self._discarded = _IDLE, 0, b"", 0
        return events

    def _cut(self, data: bytes, size: int, events: list[Event]) -> None:
        self.truncated += 1
        events.append(Truncated(data, size))

    def _junk(self, buf: bytearray, start: int, stop: int, events: list[Event]) -> None:
        self.junk_bytes += stop - start
        chunk = bytes(buf[start:stop])
        if chunk.strip(_WHITESPACE):
            events.append(Junk(stop - start, chunk[:_JUNK_SAMPLE]))


def _copy(buf: bytearray, start: int, stop: int) -> bytes:
    """``bytes(buf[start:stop])`` in one copy instead of two (a bytearray slice is a copy already):
    a 35 MB message is otherwise held three times at once while it is cut out."""
    with memoryview(buf) as view:
        return bytes(view[start:stop])
