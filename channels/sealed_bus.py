"""Encryption at rest on the bus: any Bus, with every message body sealed by AES-256-GCM.

The bus holds raw HL7 and DocumentJobs with their CDA — patient data — in the
embedded SQLite file or in RabbitMQ's message store. :class:`SealedBus` wraps
either adapter: ``publish`` seals the body, deliveries and ``parked()`` open it,
so stages never see ciphertext and adapters never see clear text. Headers stay
clear (they carry routing facts: message key, document id, codec — no patient
data), plus ``x-liaison-sealed`` saying how the body is sealed.

The key is derived from the journal key (HKDF-SHA256, its own ``info``), so
every server sharing a journal key reads the bus, and the bus key is never the
journal's. The associated data is the message id, which stays the same through
retries, parking and replay — a body moved to another message fails to open.
A clear body (from before sealing was enabled) is passed through, so an engine
can be upgraded with messages in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from channels.cipher import AesGcmCodec, DecryptError
from router.ports import Bus, Delivery, DeliveryHandler, Envelope, QueueDepth, Subscription

SEALED_HEADER = "x-liaison-sealed"
SEAL = "aes-256-gcm/v1"


def bus_key(journal_key: bytes) -> bytes:
    """The bus's own 32-byte key, derived from the journal key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"liaison bus body v1").derive(journal_key)


class SealedBus:
    def __init__(self, inner: Bus, journal_key: bytes):
        self.inner = inner
        self._codec = AesGcmCodec(bus_key(journal_key))

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def publish(self, queue: str, body: bytes, *, message_id: str,
                      headers: Mapping[str, str] | None = None) -> None:
        sealed = self._codec.seal_bytes(body, message_id.encode("utf-8"))
        await self.inner.publish(queue, sealed, message_id=message_id,
                                 headers={**(headers or {}), SEALED_HEADER: SEAL})

    async def consume(self, queue: str, handler: DeliveryHandler, *, prefetch: int = 16) -> Subscription:
        async def opened(delivery: Delivery) -> None:
            try:
                envelope = self._open(delivery.envelope)
            except DecryptError as exc:
                # Not readable with this key (another site's key, an altered body): kept, never retried in a loop.
                await delivery.park(f"sealed body cannot be opened: {exc}")
                return
            await handler(_OpenedDelivery(delivery, envelope))
        return await self.inner.consume(queue, opened, prefetch=prefetch)

    async def parked(self, queue: str, limit: int = 100) -> list[Envelope]:
        return [self._open(envelope) for envelope in await self.inner.parked(queue, limit)]

    async def replay(self, queue: str, message_id: str) -> bool:
        return await self.inner.replay(queue, message_id)

    async def depth(self, queue: str) -> QueueDepth:
        return await self.inner.depth(queue)

    def _open(self, envelope: Envelope) -> Envelope:
        if envelope.headers.get(SEALED_HEADER) != SEAL:
            return envelope
        body = self._codec.open_bytes(envelope.body, envelope.message_id.encode("utf-8"))
        headers = {name: value for name, value in envelope.headers.items() if name != SEALED_HEADER}
        return replace(envelope, body=body, headers=headers)


class _OpenedDelivery:
    """The adapter's delivery with the body opened; settling goes to the adapter, which moves the sealed copy."""

    def __init__(self, inner: Delivery, envelope: Envelope):
        self._inner = inner
        self.envelope = envelope

    async def ack(self) -> None:
        await self._inner.ack()

    async def retry(self, delay: float, reason: str) -> None:
        await self._inner.retry(delay, reason)

    async def park(self, reason: str) -> None:
        await self._inner.park(reason)
