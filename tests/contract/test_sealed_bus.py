"""SealedBus on both adapters: what the store holds is ciphertext, the stages read clear text, another key parks.

(The whole bus contract also runs through SealedBus: see the ``sealing`` fixture in conftest.py.)
"""

from __future__ import annotations

import os

from channels.sealed_bus import SEALED_HEADER, SealedBus
from router.ports import Envelope
from router.settle import PARK_REASON_HEADER
from tests.contract.conftest import open_bus
from tests.contract.test_bus import eventually, run_worker

MARKER = b"PID|1||285057512345623^^^ASIP-SANTE-INS-NIR MARKER-PATIENT-DATA"


async def test_bodies_are_ciphertext_in_the_store_and_clear_for_the_stages(bus_url, new_queue):
    key, queue = os.urandom(32), new_queue()
    sealed, raw = SealedBus(open_bus(bus_url), key), open_bus(bus_url)
    await sealed.connect()
    await raw.connect()
    try:
        await sealed.publish(queue, MARKER, message_id="S-1", headers={"message_key": "K-1"})
        seen_raw: list[Envelope] = []

        async def peek(envelope):
            seen_raw.append(envelope)
            raise ConnectionError("leave it for the sealed consumer")   # transient: put back with a delay

        subscription, _ = await run_worker(raw, queue, peek)
        await eventually(lambda: seen_raw, "the raw delivery")
        await subscription.cancel()
        assert MARKER not in seen_raw[0].body and seen_raw[0].headers[SEALED_HEADER] == "aes-256-gcm/v1"
        assert seen_raw[0].headers["message_key"] == "K-1"

        seen: list[Envelope] = []

        async def work(envelope):
            seen.append(envelope)

        subscription, _ = await run_worker(sealed, queue, work)
        await eventually(lambda: seen, "the sealed delivery (after the retry)")
        await subscription.cancel()
        assert seen[0].body == MARKER and seen[0].headers["message_key"] == "K-1"
        assert SEALED_HEADER not in seen[0].headers
    finally:
        await sealed.close()
        await raw.close()


async def test_a_body_sealed_with_another_key_is_parked_not_looped(bus_url, new_queue):
    queue = new_queue()
    ours, theirs = SealedBus(open_bus(bus_url), os.urandom(32)), SealedBus(open_bus(bus_url), os.urandom(32))
    await ours.connect()
    await theirs.connect()
    try:
        await theirs.publish(queue, MARKER, message_id="S-2")
        calls: list[Envelope] = []

        async def work(envelope):
            calls.append(envelope)

        subscription, _ = await run_worker(ours, queue, work)
        parked = await eventually(lambda: ours.inner.parked(queue), "the parked message")
        await subscription.cancel()
        assert calls == [] and parked[0].message_id == "S-2"
        assert "sealed body cannot be opened" in parked[0].headers[PARK_REASON_HEADER]
    finally:
        await ours.close()
        await theirs.close()
