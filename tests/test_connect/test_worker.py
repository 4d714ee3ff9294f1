"""The connector worker on a real broker, with an in-memory destination."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from confluent_kafka import Producer

from streams.codecs.upserts import UpsertCodec
from streams.connect.config import BatchConfig, ConnectorConfig
from streams.connect.errors import RetryableSinkError, SinkBackpressureError
from streams.connect.worker import ConnectorWorker
from streams.errors import DeliveryError
from streams.httpclient.backoff import RetryConfig
from streams.kafka.output_records import OutputRecord
from streams.kafka.topics import ensure_topic
from streams.merge import MergePolicy, apply_event, upsert_as_event
from streams.model import Op, Profile, PropertyState, Upsert
from streams.testing import MemorySink, read_topic, wait_until

T0 = 1_700_000_000_000


def upserts(count: int, customers: int) -> list[Upsert]:
    return [
        Upsert(
            f"c-{i % customers}",
            Op.UPSERT,
            {"n": PropertyState(i, T0 + i, "crm")},
            None,
            "crm",
            f"e{i}",
            T0,
        )
        for i in range(count)
    ]


def produce_upserts(settings, items: Sequence[Upsert | bytes]) -> None:
    codec = UpsertCodec(settings.output_format)
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "partitioner": "murmur2_random"}
    )
    for item in items:
        if isinstance(item, bytes):
            producer.produce(settings.upserts_topic, item, b"c-bad")
        else:
            producer.produce(settings.upserts_topic, codec.encode(item), item.customer_id.encode())
    producer.flush(30)


def expected(items: list[Upsert]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for item in items:
        apply_event(
            profiles.setdefault(item.customer_id, Profile()), upsert_as_event(item), MergePolicy()
        )
    return profiles


class Running:
    def __init__(self, worker: ConnectorWorker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(BaseException):  # logged by the worker, kept in .error
            self.worker.run()

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(60)


@pytest.fixture
def connector(streams_settings) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(settings, sink, **batch) -> Running:
        config = ConnectorConfig(
            name="test",
            type="file",
            batch=BatchConfig(**{"max_records": 100, "max_wait_ms": 200, **batch}),
            retry=RetryConfig(initial_backoff_ms=20, max_backoff_ms=100),
        )
        ensure_topic(settings, config.dead_letter_topic(settings))
        handle = Running(ConnectorWorker(config, settings, sink))
        running.append(handle)
        assert handle.worker.wait_assigned(60)
        return handle

    yield start
    for handle in running:
        handle.stop()


def test_delivers_everything_commits_and_a_restart_redelivers_nothing(streams_settings, connector):
    settings = streams_settings()
    items = upserts(500, 50)
    produce_upserts(settings, items)
    sink = MemorySink(settings)
    first = connector(settings, sink)
    wait_until(lambda: first.worker.totals.written == 500)
    assert sink.snapshot() == expected(items)
    first.stop()
    again = MemorySink(settings)
    second = connector(settings, again)
    produce_upserts(settings, items[:1])
    wait_until(lambda: second.worker.totals.written == 1)
    assert second.worker.totals.consumed == 1, "committed offsets are not replayed"


def test_transient_failures_are_retried_and_nothing_is_lost(streams_settings, connector):
    settings = streams_settings()
    items = upserts(300, 30)
    sink = MemorySink(settings)
    sink.fail_next = [RetryableSinkError("db down"), RetryableSinkError("db still down")]
    handle = connector(settings, sink)
    produce_upserts(settings, items)
    wait_until(lambda: handle.worker.totals.written == 300)
    assert handle.worker.totals.retries == 2
    assert sink.snapshot() == expected(items)


def test_backpressure_waits_retry_after_and_buffers_no_more_meanwhile(streams_settings, connector):
    settings = streams_settings()
    items = upserts(1000, 100)
    sink = MemorySink(settings)
    sink.fail_next = [SinkBackpressureError("429", retry_after=1.0)] * 3
    handle = connector(settings, sink, max_records=100)
    produce_upserts(settings, items)
    wait_until(lambda: handle.worker.totals.written == 1000, timeout=90)
    gaps = [b - a for a, b in zip(sink.attempts, sink.attempts[1:], strict=False)][:3]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert sink.max_buffered <= 100, "paused partitions: the buffer never grows past a batch"
    assert sink.snapshot() == expected(items)


def test_refused_and_undecodable_records_go_to_the_connector_dlq(streams_settings, connector):
    settings = streams_settings()
    items = upserts(40, 40)
    sink = MemorySink(settings)
    sink.reject = lambda record: "invalid email" if record.customer_id == "c-7" else None
    handle = connector(settings, sink)
    produce_upserts(settings, [*items, b"not an upsert"])
    wait_until(lambda: handle.worker.totals.consumed == 41)
    wait_until(lambda: handle.worker.totals.rejected == 2)
    dead = read_topic(settings, handle.worker.dlq_topic)
    reasons = sorted(r.headers["dlq.reason"].decode() for r in dead)
    assert reasons == ["bad_upsert", "invalid email"]
    assert {r.value for r in dead} >= {b"not an upsert"}
    assert "c-7" not in sink.snapshot()
    assert len(sink.snapshot()) == 39


class DeferredSink(MemorySink):
    """Returns from ``begin_write`` at once and applies the batch when settled, as a database
    merges a sent batch on its own; records the order of what the worker does."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.events: list[str] = []
        self.batches: list[list[tuple[int, int]]] = []
        self.failed: list[list[tuple[int, int]]] = []

    def add(self, record) -> None:
        super().add(record)
        self.events.append("add")

    def begin_write(self, batch):
        self.events.append("begin")
        keys = [(record.partition, record.offset) for record in batch]
        self.batches.append(keys)

        def settle():
            self.events.append("settle")
            try:
                return self.write(batch)
            except RetryableSinkError:
                self.failed.append(keys)
                raise

        return settle


def test_the_next_batch_is_consumed_while_a_write_is_in_flight(streams_settings, connector):
    settings = streams_settings()
    items = upserts(1000, 100)
    produce_upserts(settings, items)
    sink = DeferredSink(settings)
    first = connector(settings, sink, max_records=100)
    wait_until(lambda: first.worker.totals.written == 1000)
    assert sink.snapshot() == expected(items)
    flights = "".join("b" if e == "begin" else "s" if e == "settle" else "a" for e in sink.events)
    assert "ba" in flights, "records were added while a write was in flight"
    assert flights.count("b") == flights.count("s") == first.worker.totals.batches
    first.stop()
    second = connector(settings, MemorySink(settings))
    produce_upserts(settings, items[:1])
    wait_until(lambda: second.worker.totals.written == 1)
    assert second.worker.totals.consumed == 1, "every settled batch's offsets were committed"


def test_a_write_failing_in_flight_is_retried_with_the_next_batch(streams_settings, connector):
    settings = streams_settings()
    items = upserts(600, 60)
    produce_upserts(settings, items)
    sink = DeferredSink(settings)
    sink.fail_next = [RetryableSinkError("lost the connection"), RetryableSinkError("again")]
    first = connector(settings, sink, max_records=100)
    wait_until(lambda: first.worker.totals.written == 600)
    assert first.worker.totals.retries == 2
    assert sink.snapshot() == expected(items)
    assert len(sink.failed) == 2
    for failed in sink.failed:  # each went back in front of what came after it
        retried = sink.batches[sink.batches.index(failed) + 1]
        assert retried[: len(failed)] == failed
    first.stop()
    second = connector(settings, MemorySink(settings))
    produce_upserts(settings, items[:1])
    wait_until(lambda: second.worker.totals.written == 1)
    assert second.worker.totals.consumed == 1


def test_dead_letters_the_dlq_refused_once_are_parked_on_the_retry(
    streams_settings, connector, monkeypatch: pytest.MonkeyPatch
):
    settings = streams_settings()
    items = upserts(40, 40)
    sink = MemorySink(settings)
    sink.reject = lambda record: "invalid email" if record.customer_id == "c-7" else None
    park = ConnectorWorker._park
    refused_once: list[int] = []

    def flaky_park(self: ConnectorWorker, letters: list[OutputRecord]) -> None:
        if letters and not refused_once:
            refused_once.append(len(letters))
            raise DeliveryError("the DLQ's leader is away")
        park(self, letters)

    monkeypatch.setattr(ConnectorWorker, "_park", flaky_park)
    handle = connector(settings, sink)
    produce_upserts(settings, items)
    # The 40 may come in two batches: wait for both, the refused record parked once.
    totals = handle.worker.totals
    wait_until(lambda: totals.rejected == 1 and totals.written == 39)
    assert refused_once == [1]
    dead = read_topic(settings, handle.worker.dlq_topic)
    assert [r.headers["dlq.reason"] for r in dead] == [b"invalid email"]
    assert len(sink.snapshot()) == 39
