"""Queue and dead-letter declarations, tolerant of a queue someone else declared.

Dead letters are *published* to the dead-letter exchange with the reason in headers (a reject
cannot add headers), so they work whether or not the source queue dead-letters on its own. We
still give a queue we create ``x-dead-letter-exchange``, so a message an operator rejects lands
in the same place. A queue declared elsewhere with other arguments is used as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streams.errors import ConfigError
from streams.ingest.amqp.config import AmqpSourceConfig
from streams.optional import requires

with requires("aio_pika", "the AMQP source"):
    import aio_pika
    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
    from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Topology:
    channel: AbstractChannel
    queue: AbstractQueue
    dead_letters: AbstractExchange


async def declare(connection: AbstractConnection, config: AmqpSourceConfig) -> Topology:
    """A confirming channel with ``prefetch = max_in_flight``, the queue and the DLX."""
    channel = await _channel(connection, config)
    dlx = await channel.declare_exchange(
        config.dlx_name, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead = await channel.declare_queue(config.dlq_name, durable=True)
    await dead.bind(dlx)
    if config.declare_queue:
        try:
            queue = await channel.declare_queue(
                config.queue,
                durable=True,
                arguments={"x-dead-letter-exchange": config.dlx_name},
            )
            return Topology(channel, queue, dlx)
        except ChannelPreconditionFailed:
            # The broker closed the channel: the queue exists with other arguments.
            logger.warning(
                "queue=%s exists with other arguments; using it as declared", config.queue
            )
            channel = await _channel(connection, config)
            dlx = await channel.get_exchange(config.dlx_name)
    try:
        queue = await channel.declare_queue(config.queue, passive=True)
    except ChannelNotFoundEntity as exc:
        raise ConfigError(
            f"AMQP queue {config.queue!r} does not exist (declare_queue = false)"
        ) from exc
    return Topology(channel, queue, dlx)


async def _channel(connection: AbstractConnection, config: AmqpSourceConfig) -> AbstractChannel:
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=config.max_in_flight)
    return channel
