"""``streams._native.input_records`` builds the processor's input records from consumed
messages exactly as Python would, and leaves the error case to the caller."""

from __future__ import annotations

import gc
from typing import cast

from confluent_kafka import KafkaError, Message
from hypothesis import given
from hypothesis import strategies as st

from streams._native import input_records
from streams.kafka.dead_letters import Headers
from streams.processor.records import InputRecord

messages = st.builds(
    lambda partition, offset, key, value, headers, timestamp: Message(
        topic="profile-changes",
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp=timestamp,
    ),
    st.integers(0, 100),
    st.integers(0, 2**40),
    st.none() | st.binary(max_size=20),
    st.none() | st.binary(max_size=50),
    st.none() | st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=5)), max_size=3),
    st.tuples(st.sampled_from([0, 1, 2]), st.integers(-1, 2**41)),
)


@given(batch=st.lists(messages, max_size=20))
def test_records_are_what_python_builds(batch: list[Message]) -> None:
    expected = [
        InputRecord(
            m.partition() or 0,
            m.offset() or 0,
            m.key(),
            m.value(),
            m.timestamp()[1],
            cast(Headers | None, m.headers()),
        )
        for m in batch
    ]
    records = input_records(batch, InputRecord)
    assert records == expected
    assert all(type(record) is InputRecord for record in records or [])
    assert not any(gc.is_tracked(record) for record in records or [])


def test_a_message_with_an_error_is_left_to_the_caller() -> None:
    failed = Message(topic="t", partition=0, offset=1, error=KafkaError(KafkaError._PARTITION_EOF))
    good = Message(topic="t", partition=0, offset=0, value=b"{}")
    assert input_records([good, failed], InputRecord) is None
    assert input_records([good], InputRecord) == [InputRecord(0, 0, None, b"{}", 0, None)]
