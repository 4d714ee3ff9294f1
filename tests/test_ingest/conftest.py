"""RabbitMQ for the AMQP source's tests: $AMQP_URL, else the local server (guest/guest)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import aio_pika
import pytest

from streams.ingest.amqp.config import AMQP_URL_ENV, DEFAULT_AMQP_URL
from tests.prerequisites import unavailable

CONNECT_TIMEOUT_S = 5


def _unavailable(reason: str) -> NoReturn:
    unavailable("RabbitMQ", reason)


async def _ping(url: str) -> None:
    connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_S)
    await connection.close()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """A reachable RabbitMQ: ``$AMQP_URL``, else ``amqp://guest:guest@127.0.0.1:5672/``."""
    url = os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL
    try:
        asyncio.run(_ping(url))
    except Exception as exc:  # aio-pika raises connection, auth and timeout errors alike
        _unavailable(f"{url.rsplit('@', 1)[-1]}: {type(exc).__name__}: {exc}")
    return url


class RabbitQueue:
    """A uniquely named queue (and its dead-letter queue) with synchronous test helpers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"streams-test-{uuid.uuid4().hex[:8]}"
        self.dead_letter = f"{self.name}.dead-letter"

    def declare(self) -> None:
        """Declare the queue as the source would (durable, dead-lettering)."""

        async def go(channel: aio_pika.abc.AbstractChannel) -> None:
            await channel.declare_queue(
                self.name, durable=True, arguments={"x-dead-letter-exchange": self.dead_letter}
            )

        self._run(go)

    def publish(self, bodies: Sequence[bytes], **properties: Any) -> None:
        self.declare()

        async def go(channel: aio_pika.abc.AbstractChannel) -> None:
            for body in bodies:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     **properties),
                    routing_key=self.name,
                )  # fmt: skip

        self._run(go)

    def ready(self, name: str | None = None) -> int:
        """Messages ready in the queue (unacknowledged ones of a live consumer not included)."""
        result: list[int] = []

        async def go(channel: aio_pika.abc.AbstractChannel) -> None:
            queue = await channel.declare_queue(name or self.name, passive=True)
            result.append(queue.declaration_result.message_count or 0)

        self._run(go)
        return result[0]

    def drain(self, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Take (and ack) every message ready in ``name``."""
        taken: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def go(channel: aio_pika.abc.AbstractChannel) -> None:
            queue = await channel.declare_queue(name, passive=True)
            while (message := await queue.get(fail=False)) is not None:
                await message.ack()
                taken.append(message)

        self._run(go)
        return taken

    def delete(self) -> None:
        async def go(channel: aio_pika.abc.AbstractChannel) -> None:
            for name in (self.name, self.dead_letter):
                await channel.queue_delete(name)
            await channel.exchange_delete(self.dead_letter)

        self._run(go)

    def _run(self, body: Callable[[aio_pika.abc.AbstractChannel], Any]) -> None:
        async def main() -> None:
            connection = await aio_pika.connect(self.url, timeout=CONNECT_TIMEOUT_S)
            async with connection:
                await body(await connection.channel(publisher_confirms=True))

        asyncio.run(main())


@pytest.fixture
def rabbit_queue(amqp_url: str) -> Iterator[RabbitQueue]:
    queue = RabbitQueue(amqp_url)
    yield queue
    queue.delete()
