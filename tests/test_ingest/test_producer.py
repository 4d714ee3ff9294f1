"""IngestProducer against the real broker: acknowledgement, errors per record, broker down."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.ingest.producer import IngestProducer, KafkaBackpressureError
from streams.settings import Settings
from streams.testing import read_topic


def test_send_resolves_after_the_broker_has_every_record(streams_settings) -> None:
    settings = streams_settings()
    producer = IngestProducer(settings)
    producer.start()
    records = [(f"c-{i}".encode(), f'{{"n":{i}}}'.encode()) for i in range(500)]
    try:
        errors = asyncio.run(producer.send(records))
    finally:
        assert producer.close() == 0
    assert errors == {}
    read = read_topic(settings, settings.input_topic)
    assert sorted(record.value or b"" for record in read) == sorted(value for _, value in records)


def test_per_record_errors_are_reported_by_index(streams_settings) -> None:
    settings = streams_settings()
    overrides: dict[str, Any] = {"message.max.bytes": 2000}
    producer = IngestProducer(settings, **overrides)
    producer.start()
    records = [(b"a", b"x"), (b"b", b"y" * 5000), (b"c", b"z")]
    try:
        errors = asyncio.run(producer.send(records))
    except BufferError:  # pragma: no cover - librdkafka rejects oversize at produce time
        pytest.fail("oversize record must be an error result, not an exception")
    finally:
        producer.close()
    assert list(errors) == [1]
    assert errors.refused == {1}, "too large is the record's own fault, not an outage"


def test_unreachable_broker_raises_broker_unavailable() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", delivery_timeout_ms=60_000)
    producer = IngestProducer(settings, send_timeout=1.0)
    producer.start()
    try:
        with pytest.raises(KafkaBackpressureError) as caught:
            asyncio.run(producer.send([(b"k", b"v")]))
    finally:
        producer.close(timeout=0)
    assert caught.value.retry_after > 0
