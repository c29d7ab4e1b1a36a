"""AMQP channel: the bus on RabbitMQ (``amqp://user:password@host:5672/``, or a list of such URLs: a cluster's nodes)."""

from channels.amqp.bus import AmqpBus, from_url

__all__ = ["AmqpBus", "from_url"]
