"""A connector is never stopped by one record: a huge one on profile-upserts is dead-lettered
(cut to fit the producer's limit) and the good ones behind it reach the file sink."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.codecs.upserts import UpsertCodec
from streams.connect.config import BatchConfig, ConnectorConfig
from streams.connect.sinks.file import FileSink, read_jsonl, visible_files
from streams.connect.worker import ConnectorWorker
from streams.httpclient.backoff import RetryConfig
from streams.kafka.topics import ensure_topic
from streams.model import Upsert
from streams.settings import Settings
from streams.testing import read_topic, wait_until
from tests.conftest import TEST_PARTITIONS
from tests.test_connect.test_worker import Running, upserts

GOOD = 30
SIZES = [999_950, 1_048_000]
BIG_PRODUCER = {"message.max.bytes": 2_000_000, "compression.type": "none"}


def noise(size: int) -> bytes:
    """Not an upsert, and incompressible (lz4 cannot sneak it under a topic's limit)."""
    return base64.b64encode(random.Random(size).randbytes(size))[:size]


def produce(settings: Settings, values: list[bytes]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "partitioner": "murmur2_random",
            **BIG_PRODUCER,
        }
    )
    for value in values:
        producer.produce(settings.upserts_topic, value, b"c-1")  # one key: one partition
    assert producer.flush(60) == 0


@pytest.fixture
def file_connector(tmp_path: Path) -> Iterator[list[Running]]:
    running: list[Running] = []
    yield running
    for handle in running:
        handle.stop()


def start(settings: Settings, directory: Path, running: list[Running], **config: object) -> Running:
    connector = ConnectorConfig(
        name="files",
        type="file",
        batch=BatchConfig(max_records=10, max_wait_ms=200),
        retry=RetryConfig(initial_backoff_ms=20, max_backoff_ms=100),
        **config,  # type: ignore[arg-type]
    )
    ensure_topic(settings, connector.dead_letter_topic(settings))
    sink = FileSink({"directory": str(directory)}, name="files", settings=settings)
    handle = Running(ConnectorWorker(connector, settings, sink))
    running.append(handle)
    assert handle.worker.wait_assigned(60)
    return handle


def written(directory: Path) -> list[Upsert]:
    return [u for path in visible_files(directory, "files") for u in read_jsonl(path)]


def good_upserts(settings: Settings) -> list[bytes]:
    codec = UpsertCodec(settings.output_format)
    return [codec.encode(u._replace(customer_id="c-1")) for u in upserts(GOOD, 1)]


def delivered_or_dead(handle: Running, count: int):
    return lambda: not handle.thread.is_alive() or handle.worker.totals.written >= count


@pytest.mark.parametrize("size", SIZES)
def test_a_huge_record_is_dead_lettered_cut_and_the_good_ones_behind_it_are_written(
    streams_settings, file_connector, tmp_path, size
):
    settings = streams_settings()
    handle = start(settings, tmp_path / "out", file_connector)
    produce(settings, [noise(size), *good_upserts(settings)])

    wait_until(delivered_or_dead(handle, GOOD), timeout=120)
    assert handle.thread.is_alive()
    assert handle.worker.error is None
    assert {u.properties["n"].value for u in written(tmp_path / "out")} == set(range(GOOD))
    [letter] = read_topic(settings, handle.worker.dlq_topic)
    assert letter.headers["dlq.reason"] == b"bad_upsert"
    assert letter.headers["dlq.connector"] == b"files"
    assert letter.headers["dlq.truncated"] == b"true"
    assert letter.headers["dlq.original_bytes"] == str(size).encode()
    assert letter.value is not None
    assert noise(size).startswith(letter.value)
    assert len(letter.value) > 990_000


def test_a_letter_the_dlq_topic_refuses_is_cut_further(
    streams_settings, file_connector, tmp_path, kafka_bootstrap
):
    """The connector's DLQ topic takes at most 200 kB (below the producer's 1 MB)."""
    settings = streams_settings()
    dlq = f"{settings.upserts_topic}-small-dlq"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = NewTopic(dlq, TEST_PARTITIONS, 1, config={"max.message.bytes": "200000"})
    admin.create_topics([topic])[dlq].result(timeout=30)
    handle = start(settings, tmp_path / "out", file_connector, dlq_topic=dlq)
    produce(settings, [noise(999_950), *good_upserts(settings)])

    wait_until(delivered_or_dead(handle, GOOD), timeout=120)
    assert handle.thread.is_alive()
    assert {u.properties["n"].value for u in written(tmp_path / "out")} == set(range(GOOD))
    [letter] = read_topic(settings, dlq)
    assert letter.headers["dlq.reason"] == b"bad_upsert"
    assert letter.headers["dlq.original_bytes"] == b"999950"
    assert 0 < len(letter.value or b"") < 16 * 1024
