"""A profile never grows past max_state_bytes: the event that would do it goes to the DLQ."""

from __future__ import annotations

import orjson

from streams.kafka.partitioner import partition_for
from streams.processor.batch import BatchProcessor
from streams.processor.records import InputRecord
from streams.processor.state_codec import decode_profile
from streams.settings import Settings

T0 = 1_700_000_000


def test_the_event_that_would_overflow_the_state_is_rejected_and_the_rest_applied():
    settings = Settings(partitions=4, max_state_bytes=1024)
    store: dict[bytes, bytes] = {}
    processor = BatchProcessor(
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
