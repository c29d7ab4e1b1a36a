"""Embedded bus: a delivery left unsettled (a settle that failed on a store error) goes back to the queue."""

from __future__ import annotations

import asyncio

from channels.embedded import EmbeddedBus


async def test_an_unsettled_delivery_is_given_back_after_the_grace_period(tmp_path):
    bus = EmbeddedBus(tmp_path / "bus.sqlite", poll_interval=0.05, unsettled_grace=0.2)
    await bus.connect()
    seen: list[int] = []
    done = asyncio.Event()

    async def handler(delivery):
        seen.append(delivery.envelope.attempt)
        if len(seen) == 1:
            return                      # as if the ack had failed: nothing settled
        await delivery.ack()
        done.set()

    try:
        await bus.publish("q", b"x", message_id="m1")
        subscription = await bus.consume("q", handler, prefetch=1)
        await asyncio.wait_for(done.wait(), 5)
        assert len(seen) == 2           # delivered again, slot freed, then acked
        await subscription.cancel()
    finally:
        await bus.close()
