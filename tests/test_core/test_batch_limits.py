"""Batch limits: a profile never grows past max_state_bytes (the event that would do it goes to
the DLQ); a parked record is dead-lettered, not merged; a shrunk dead letter fits 16 KiB."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from streams.errors import InvalidEventError
from streams.kafka.dead_letters import MINIMAL_LIMIT_BYTES, record_size
from streams.kafka.partitioner import partition_for
from streams.processor.batch import BatchProcessor
from streams.processor.kernel import NativeBatchProcessor
from streams.processor.records import InputRecord
from streams.settings import Settings
from streams.state.codec import decode_profile

T0 = 1_700_000_000

Processor = type[BatchProcessor] | type[NativeBatchProcessor]


@pytest.fixture(params=[NativeBatchProcessor, BatchProcessor], ids=["native", "python"])
def processor_class(request: pytest.FixtureRequest) -> Processor:
    """Both kernels keep the limits."""
    cls: Processor = request.param
    return cls


def test_the_event_that_would_overflow_the_state_is_rejected_and_the_rest_applied(
    processor_class: Processor,
):
    settings = Settings(partitions=4, max_state_bytes=1024)
    store: dict[bytes, bytes] = {}
    processor = processor_class(
        settings, lambda _p, keys: [store.get(k) for k in keys], lambda: (T0 + 60) * 1000
    )
    key = b"c-1"
    partition = partition_for(key, settings.partitions)
    events = [
        {
            "customer_id": "c-1",
            "source": "crm",
            "update_timestamp": T0 + i,
            "properties": {f"note_{i}": "x" * 250},
        }
        for i in range(5)
    ] + [
        {
            "customer_id": "c-1",
            "source": "crm",
            "update_timestamp": T0 + 9,
            "properties": {"city": "Brno"},
        }
    ]
    records = [
        InputRecord(partition, offset, key, orjson.dumps(event), 0)
        for offset, event in enumerate(events)
    ]
    result = processor.process(records)

    state = result.states[partition][key]
    assert len(state) <= 1024
    profile = decode_profile(state)
    assert set(profile.properties) == {"note_0", "note_1", "note_2", "city"}
    assert result.counts.rejected == {"profile_too_large": 2}
    assert result.counts.applied == 4
    dead = [o for o in result.outputs if o.topic == settings.dlq_topic]
    assert [dict(o.headers or [])["dlq.reason"] for o in dead] == [b"profile_too_large"] * 2
    upserts = [o for o in result.outputs if o.topic == settings.upserts_topic]
    assert len(upserts) == 4, "no upsert for a rejected event"


def test_a_parked_record_is_dead_lettered_with_its_reason_and_not_merged(
    processor_class: Processor,
):
    settings = Settings(partitions=4)
    processor = processor_class(settings, lambda _p, keys: [None] * len(keys), lambda: T0 * 1000)
    key = b"c-1"
    partition = partition_for(key, settings.partitions)
    events = [
        {"customer_id": "c-1", "source": "crm", "update_timestamp": T0, "properties": {"n": i}}
        for i in range(2)
    ]
    records = [
        InputRecord(partition, offset, key, orjson.dumps(event), 0, [("trace", b"t")])
        for offset, event in enumerate(events)
    ]
    refused = InvalidEventError("output_too_large", "profile-upserts refused an output")
    result = processor.process(records, {(partition, 0): refused})

    [dead] = [o for o in result.outputs if o.topic == settings.dlq_topic]
    headers = dict(dead.headers or [])
    assert (headers["dlq.reason"], headers["dlq.offset"], headers["trace"]) == (
        b"output_too_large",
        b"0",
        b"t",
    )
    assert dead.value == records[0].value
    assert dead.origin == (partition, 0)
    assert decode_profile(result.states[partition][key]).properties["n"].value == 1
    assert result.contributors == {(partition, key): [1]}
    assert all(o.origin == (partition, 1) for o in result.outputs if o is not dead)


def test_a_shrunk_dead_letter_fits_the_minimal_limit_and_says_it_was_cut(
    processor_class: Processor,
):
    settings = Settings(partitions=4, max_event_bytes=1024)
    processor = processor_class(settings, lambda _p, keys: [None] * len(keys), lambda: T0 * 1000)
    big = InputRecord(0, 7, b"c-1", b"x" * 500_000, 0)
    whole = processor.process([big]).outputs[0]
    assert (whole.value, dict(whole.headers or [])["dlq.reason"]) == (big.value, b"too_large")
    [cut] = processor.process([big], shrunk={(0, 7)}).outputs
    headers = dict(cut.headers or [])
    assert record_size(cut.key, cut.value, cut.headers) <= MINIMAL_LIMIT_BYTES
    assert (headers["dlq.truncated"], headers["dlq.original_bytes"]) == (b"true", b"500000")


def test_the_state_limit_must_leave_room_in_a_record():
    with pytest.raises(ValidationError, match="max_state_bytes"):
        Settings(max_message_bytes=500_000, max_state_bytes=490_000)
    assert Settings(max_message_bytes=2_000_000, max_state_bytes=1_900_000).max_state_bytes
