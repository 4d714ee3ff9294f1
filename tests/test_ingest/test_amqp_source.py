"""The AMQP source against a real RabbitMQ and a real Kafka: ack after Kafka, dead letters,
Kafka outages and a consumer killed mid-stream."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.ingest.amqp.config import AmqpSourceConfig
from streams.ingest.amqp.consumer import DETAIL_HEADER, REASON_HEADER, AmqpSource, AmqpStats
from streams.settings import Settings
from streams.testing import read_topic, wait_until
from tests.test_ingest.conftest import RabbitQueue

SAMPLES = Path(__file__).parents[2] / "samples" / "proca_messages.jsonl"


def action(i: int, email: str | None = None) -> bytes:
    message: dict[str, Any] = {
        "schema": "proca:action:2",
        "stage": "deliver",
        "actionId": i,
        "actionPageId": 5,
        "actionPage": {"locale": "en", "name": "test/en"},
        "campaign": {"name": "test", "title": "Test", "externalId": 1},
        "action": {
            "actionType": "petition",
            "customFields": {},
            "createdAt": f"2023-11-14T22:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "testing": False,
        },
        "contact": {"email": email or f"Supporter{i}@Example.org", "firstName": f"S{i}"},
        "privacy": {"withConsent": True, "optIn": i % 2 == 0, "givenAt": "2023-11-14T22:00:00Z"},
    }
    return orjson.dumps(message)


def consume(rabbit: RabbitQueue, settings: Settings, **config: Any) -> AmqpStats:
    values: dict[str, Any] = {
        "url": rabbit.url,
        "queue": rabbit.name,
        "exit_when_idle_seconds": 1.5,
    }
    values.update(config)
    source = AmqpSource(AmqpSourceConfig(**values), settings)
    return asyncio.run(asyncio.wait_for(source.run(), timeout=120))


def events_by_id(settings: Settings) -> dict[str, dict[str, Any]]:
    records = read_topic(settings, settings.input_topic)
    events = {}
    for record in records:
        event = orjson.loads(record.value or b"")
        assert record.key == event["customer_id"].encode()  # keyed by customer
        events[event["event_id"]] = event
    return events


def test_messages_become_events_and_are_acked_after_kafka(streams_settings, rabbit_queue) -> None:
    settings = streams_settings()
    samples = [line for line in SAMPLES.read_bytes().splitlines() if line.strip()]
    generated = [action(i) for i in range(300)]
    rabbit_queue.publish(samples + generated)

    stats = consume(rabbit_queue, settings, batch_max_messages=50, max_in_flight=100)

    assert rabbit_queue.ready() == 0  # every message acked
    assert stats.acked == len(samples) + len(generated)
    assert stats.ignored == 1  # the campaign_updated event
    assert not stats.dead_lettered
    events = events_by_id(settings)
    assert len(events) == stats.events == 305
    first = events["proca:action:7:deliver"]
    assert first["customer_id"] == "supporter7@example.org"
    assert first["update_timestamp"] == 1_699_999_200 + 7  # createdAt 22:00:07Z, not now
    assert first["properties"]["email_opt_in"] is False
    assert first["properties"]["contact_ref"]
    opt_in = next(e for e in events.values() if e["properties"].get("email_status") == "bounce")
    assert opt_in["customer_id"] == "marian.galik@example.com"
    assert opt_in["properties"]["email_opt_in"] is False


def test_bad_messages_are_dead_lettered_with_their_reason_and_never_block(
    streams_settings, rabbit_queue
) -> None:
    settings = streams_settings()
    no_email = orjson.loads(action(2))
    del no_email["contact"]["email"]
    bodies = [b"{broken", action(1), orjson.dumps(no_email), b'"text"', action(3)]
    rabbit_queue.publish(bodies, message_id="m-1")

    # One message in flight at a time: a bad message would block the good ones behind it.
    stats = consume(rabbit_queue, settings, max_in_flight=1, batch_max_messages=1)

    assert rabbit_queue.ready() == 0
    assert sorted(events_by_id(settings)) == ["proca:action:1:deliver", "proca:action:3:deliver"]
    letters = rabbit_queue.drain(rabbit_queue.dead_letter)
    assert [m.body for m in letters] == [bodies[0], bodies[2], bodies[3]]
    reasons = [m.headers[REASON_HEADER] for m in letters]
    assert reasons == ["bad_json", "missing_email", "not_an_object"]
    assert all(m.headers[DETAIL_HEADER] for m in letters)
    assert all(m.message_id == "m-1" for m in letters)  # the original's properties are kept
    assert stats.dead_lettered == {"bad_json": 1, "missing_email": 1, "not_an_object": 1}


def test_a_queue_declared_elsewhere_without_dead_lettering_is_used(
    streams_settings, rabbit_queue
) -> None:
    settings = streams_settings()

    async def declare_plain() -> None:
        import aio_pika

        connection = await aio_pika.connect(rabbit_queue.url)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(rabbit_queue.name, durable=True)

    asyncio.run(declare_plain())
    bodies = [action(1), b"[]", action(2)]

    async def publish() -> None:  # publish without re-declaring (the helper declares with DLX)
        import aio_pika

        connection = await aio_pika.connect(rabbit_queue.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            for body in bodies:
                await channel.default_exchange.publish(
                    aio_pika.Message(body), routing_key=rabbit_queue.name
                )

    asyncio.run(publish())
    stats = consume(rabbit_queue, settings)
    assert stats.acked == 2
    assert rabbit_queue.ready() == 0
    [letter] = rabbit_queue.drain(rabbit_queue.dead_letter)
    assert letter.headers[REASON_HEADER] == "not_an_object"


def test_kafka_unreachable_acks_nothing_and_a_later_run_delivers(
    streams_settings, rabbit_queue
) -> None:
    settings = streams_settings()
    down = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    bodies = [action(i) for i in range(40)]
    rabbit_queue.publish(bodies)

    async def run_briefly() -> AmqpStats:
        config = AmqpSourceConfig(
            url=rabbit_queue.url, queue=rabbit_queue.name, send_timeout_seconds=1.0,
            close_timeout_seconds=0, max_backoff_seconds=1.0,
        )  # fmt: skip
        source = AmqpSource(config, down)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(5.0, stop.set)
        return await source.run(stop)

    stats = asyncio.run(run_briefly())
    assert stats.acked == 0
    assert stats.kafka_outages >= 1
    assert stats.requeued >= len(bodies)
    assert rabbit_queue.ready() == len(bodies)  # nothing acknowledged before Kafka had it

    stats = consume(rabbit_queue, settings)
    assert rabbit_queue.ready() == 0
    assert len(events_by_id(settings)) == len(bodies)


def _cli_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        STREAMS_INPUT_TOPIC=settings.input_topic,
        STREAMS_UPSERTS_TOPIC=settings.upserts_topic,
        STREAMS_STALE_TOPIC=settings.stale_topic,
        STREAMS_DLQ_TOPIC=settings.dlq_topic,
        STREAMS_CHANGELOG_TOPIC=settings.changelog_topic,
    )
    return env


def _cli(rabbit: RabbitQueue, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "streams.cli.main", "ingest", "amqp",
        "--queue", rabbit.name, "--url", rabbit.url, *options,
    ]  # fmt: skip


@pytest.mark.slow
def test_consumer_killed_mid_stream_loses_nothing(streams_settings, rabbit_queue) -> None:
    settings = streams_settings()
    count = 3000
    rabbit_queue.publish([action(i) for i in range(count)])
    env = _cli_env(settings)

    first = subprocess.Popen(
        _cli(rabbit_queue, "--max-in-flight", "50"), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: len(read_topic(settings, settings.input_topic)) >= 200, timeout=90)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    delivered_before = len(read_topic(settings, settings.input_topic))
    assert delivered_before < count, "the consumer finished before it could be killed"

    second = subprocess.run(
        _cli(rabbit_queue, "--exit-when-idle", "2"), env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-2000:]
    assert "received=" in second.stdout
    assert rabbit_queue.ready() == 0
    events = events_by_id(settings)  # duplicates collapse on event_id
    assert sorted(events) == sorted(f"proca:action:{i}:deliver" for i in range(count))
    assert not re.search(r"[a-z0-9]{2,}@example\.org", second.stderr, re.IGNORECASE)  # masked


def test_cli_rejects_bad_options(rabbit_queue) -> None:
    result = subprocess.run(
        _cli(rabbit_queue, "--max-in-flight", "0"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "max_in_flight" in result.stderr


def test_cli_refuses_a_missing_queue_with_no_declare(rabbit_queue, kafka_bootstrap) -> None:
    started = time.monotonic()
    result = subprocess.run(
        _cli(rabbit_queue, "--no-declare"), capture_output=True, text=True, timeout=60,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},  # asked first
    )  # fmt: skip
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert time.monotonic() - started < 30


def test_cli_names_an_unreachable_broker_without_its_password(
    rabbit_queue, kafka_bootstrap
) -> None:
    command = _cli(rabbit_queue)
    command[command.index("--url") + 1] = "amqp://guest:s3cret@127.0.0.1:1/"
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},  # asked first
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot connect to AMQP at 127.0.0.1:1/" in result.stderr
    assert "s3cret" not in result.stderr


def test_a_message_kafka_keeps_refusing_is_dead_lettered_after_its_attempts(
    streams_settings, rabbit_queue
) -> None:
    """An event within our limits but over the producer's message.max.bytes (1 MB): Kafka
    refuses it every time. It must not be requeued forever behind or before the good ones."""
    settings = streams_settings(max_event_bytes=4 * 1024 * 1024)
    huge = orjson.loads(action(1))
    huge["action"]["customFields"] = {"essay": "x" * 1_200_000}
    bodies = [action(0), orjson.dumps(huge), action(2)]
    rabbit_queue.publish(bodies)

    stats = consume(
        rabbit_queue, settings, max_kafka_attempts=3, batch_max_messages=1, max_in_flight=10,
        custom_field_prefix="action_",
    )  # fmt: skip

    assert rabbit_queue.ready() == 0
    assert sorted(events_by_id(settings)) == ["proca:action:0:deliver", "proca:action:2:deliver"]
    (letter,) = rabbit_queue.drain(rabbit_queue.dead_letter)
    assert letter.body == bodies[1]
    assert letter.headers[REASON_HEADER] == "kafka_refused"
    assert "too large" in letter.headers[DETAIL_HEADER].lower()
    assert stats.requeued == 2  # attempts 1 and 2; the third dead-letters it
    assert stats.dead_lettered == {"kafka_refused": 1}
    assert stats.acked == 2
