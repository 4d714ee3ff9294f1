"""How BatchDelivery hands records to its producers: the native produce loop equals the Python
reference record by record (full queues and refusals included), and a tracking call reports
only the last record of each partition, whose offset is the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Producer
from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.batch_delivery import BatchDelivery, Reports, _produce_one
from streams.kafka.clients import producer_config
from streams.kafka.output_records import OutputRecord
from streams.testing import read_topic

TIMESTAMP = 1_700_000_000_000


@dataclass
class FakeProducer:
    """Queues what ``produce`` takes, as confluent-kafka's does: a value marked ``full``
    meets a full queue once (``poll`` frees room), one marked ``refused`` is refused before
    it is queued, every time."""

    queued: list[tuple[Any, ...]] = field(default_factory=list)
    met_full: set[bytes] = field(default_factory=set)
    attempts: int = 0

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        callback: Any = None,
        *,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        self.attempts += 1
        if value is not None and value.startswith(b"full") and value not in self.met_full:
            self.met_full.add(value)
            raise BufferError("Local: Queue full")
        if value is not None and value.startswith(b"refused"):
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.queued.append((topic, value, key, partition, callback, timestamp, headers))

    def poll(self, timeout: float) -> int:
        return 0


def _record(kind: str, index: int, partition: int, extras: str) -> OutputRecord:
    value = None if kind == "tombstone" else f"{kind}-{index}".encode()
    return OutputRecord(
        "t",
        partition,
        None if index % 5 == 0 else b"k%d" % index,
        value,
        headers=[("reason", b"x")] if "headers" in extras else None,
        timestamp_ms=TIMESTAMP if "timestamp" in extras else None,
    )


output_records = st.lists(
    st.builds(
        _record,
        st.sampled_from(["plain", "plain", "plain", "full", "refused", "tombstone"]),
        st.integers(0, 10_000),
        st.integers(0, 7),
        st.sampled_from(["", "", "", "headers", "timestamp", "headers timestamp"]),
    ),
    max_size=60,
)


def _by_reference(records: list[OutputRecord]) -> tuple[FakeProducer, Reports]:
    producer, reports = FakeProducer(), Reports(records)
    for record in records:
        _produce_one(cast(Producer, producer), record, reports, reports.on_error_only)
    return producer, reports


def _natively(records: list[OutputRecord]) -> tuple[FakeProducer, Reports]:
    producer, reports = FakeProducer(), Reports(records)
    BatchDelivery._produce(cast(Producer, producer), records, reports, reports.on_error_only)
    return producer, reports


def _queued_without_callbacks(producer: FakeProducer) -> list[tuple[Any, ...]]:
    return [call[:4] + call[5:] for call in producer.queued]


@given(output_records)
def test_the_native_loop_queues_and_refuses_exactly_as_the_reference(
    records: list[OutputRecord],
) -> None:
    expected_producer, expected = _by_reference(records)
    producer, reports = _natively(records)

    assert _queued_without_callbacks(producer) == _queued_without_callbacks(expected_producer)
    assert all(call[4] == reports.on_error_only for call in producer.queued)
    assert [refusal.record for refusal in reports.refused] == [
        refusal.record for refusal in expected.refused
    ]
    assert [r.error.code() for r in reports.refused] == [r.error.code() for r in expected.refused]


def test_the_native_loop_goes_on_past_the_points_where_it_lets_other_threads_in() -> None:
    records = [_record("plain", i, i % 8, "") for i in range(5000)]
    records[2500] = _record("full", 2500, 3, "")

    producer, reports = _natively(records)

    assert [call[1] for call in producer.queued] == [r.value for r in records]
    assert producer.attempts == len(records) + 1  # the full one: natively, then by Python
    assert reports.refused == []


@dataclass
class RecordingProducer:
    calls: list[tuple[bytes | None, int, Any]] = field(default_factory=list)

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, cb: Any) -> None:
        self.calls.append((value, partition, cb))


def test_a_tracking_call_reports_only_the_last_record_of_each_partition() -> None:
    quiet, reporting = RecordingProducer(), RecordingProducer()
    delivery = BatchDelivery(
        cast(Producer, quiet), flush_timeout=1, offsets_producer=cast(Producer, reporting)
    )
    records = [OutputRecord("t", i % 3, b"k", b"v-%d" % i) for i in range(10)]

    reports = delivery.start(records, track_offsets=True)

    assert [(v, p) for v, p, _ in reporting.calls] == [(b"v-7", 1), (b"v-8", 2), (b"v-9", 0)]
    assert all(cb == reports.on_delivery for _, _, cb in reporting.calls)
    assert [v for v, _, _ in quiet.calls] == [b"v-%d" % i for i in range(7)]
    assert all(cb == reports.on_error_only for _, _, cb in quiet.calls)


def test_checkpoints_are_the_offsets_of_each_partitions_last_record(streams_settings) -> None:
    settings = streams_settings(partitions=3)
    topic = settings.changelog_topic
    delivery = BatchDelivery(
        Producer(producer_config(settings, **{"delivery.report.only.error": True})),
        flush_timeout=30,
        offsets_producer=Producer(producer_config(settings)),
    )
    first = [OutputRecord(topic, i % 3, b"k-%d" % i, b"first-%d" % i) for i in range(300)]
    second = [OutputRecord(topic, i % 3, b"k-%d" % i, b"second-%d" % i) for i in range(300)]

    before, refused = delivery.send_tracking_offsets(first)
    after, refused_too = delivery.send_tracking_offsets(second)

    assert refused == refused_too == []
    offsets = {r.value: (r.partition, r.offset) for r in read_topic(settings, topic)}
    first_values = {record.value for record in first}
    for partition in range(3):
        last_first, last_second = first[-3 + partition], second[-3 + partition]
        assert last_first.partition == last_second.partition == partition
        assert offsets[last_first.value] == (partition, before[partition])
        assert offsets[last_second.value] == (partition, after[partition])
        earlier = [o for v, (p, o) in offsets.items() if p == partition and v in first_values]
        assert after[partition] > max(earlier)
