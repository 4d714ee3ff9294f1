"""``streams._native`` builds the processor's and the connectors' records (input records and
raw records from consumed messages, changelog records from new states) exactly as Python
would, out of the cycle collector's care, and leaves messages with an error to the caller."""

from __future__ import annotations

import gc
from typing import NamedTuple, cast

import pytest
from confluent_kafka import KafkaError, Message
from hypothesis import given
from hypothesis import strategies as st

from streams._native import changelog_records, input_records, raw_records
from streams.connect.records import RawRecord
from streams.kafka.dead_letters import Headers
from streams.kafka.output_records import OutputRecord
from streams.processor.records import InputRecord

messages = st.builds(
    lambda topic, partition, offset, key, value, headers, timestamp: Message(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp=timestamp,
    ),
    st.none() | st.sampled_from(["profile-changes", "profile-upserts", "é"]),
    st.integers(0, 100),
    st.integers(0, 2**40),
    st.none() | st.binary(max_size=20),
    st.none() | st.binary(max_size=50),
    st.none() | st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=5)), max_size=3),
    st.tuples(st.sampled_from([0, 1, 2]), st.integers(-1, 2**41)),
)


def _expected(batch: list[Message]) -> list[InputRecord]:
    return [
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


@given(first=st.lists(messages, max_size=20), second=st.lists(messages, max_size=20))
def test_records_are_what_python_builds(first: list[Message], second: list[Message]) -> None:
    records: list[InputRecord] = []
    assert input_records(first, InputRecord, records)
    assert input_records(second, InputRecord, records)
    assert records == _expected(first) + _expected(second)
    assert all(type(record) is InputRecord for record in records)
    assert not any(gc.is_tracked(record) for record in records)
    assert not any(gc.is_tracked(message) for message in first + second)
    assert not gc.is_tracked(records)


@given(first=st.lists(messages, max_size=20), second=st.lists(messages, max_size=20))
def test_raw_records_are_what_the_connector_built_in_python(
    first: list[Message], second: list[Message]
) -> None:
    records: list[RawRecord] = []
    assert raw_records(first, RawRecord, records)
    assert raw_records(second, RawRecord, records)
    assert records == [
        RawRecord(m.topic() or "", m.partition() or 0, m.offset() or 0, m.key(), m.value() or b"")
        for m in first + second
    ]
    assert all(type(record) is RawRecord for record in records)
    assert not any(gc.is_tracked(record) for record in records)
    assert not any(gc.is_tracked(message) for message in first + second)
    assert not gc.is_tracked(records)


def test_a_message_with_an_error_is_left_to_the_connector() -> None:
    failed = Message(topic="t", partition=0, offset=1, error=KafkaError(KafkaError._PARTITION_EOF))
    good = Message(topic="t", partition=0, offset=0, value=b"{}")
    records: list[RawRecord] = []
    assert not raw_records([good, failed], RawRecord, records)
    assert records == []
    with pytest.raises(TypeError, match="named tuple of 5 fields"):
        raw_records([good], InputRecord, [])


def test_a_message_with_an_error_is_left_to_the_caller() -> None:
    failed = Message(topic="t", partition=0, offset=1, error=KafkaError(KafkaError._PARTITION_EOF))
    good = Message(topic="t", partition=0, offset=0, value=b"{}")
    records: list[InputRecord] = []
    assert not input_records([good, failed], InputRecord, records)
    assert records == []  # nothing of a refused chunk is appended
    assert input_records([good], InputRecord, records)
    assert records == [InputRecord(0, 0, None, b"{}", 0, None)]


@given(
    st.dictionaries(
        st.integers(0, 63),
        st.dictionaries(st.binary(min_size=1, max_size=12), st.binary(max_size=40), max_size=8),
        max_size=5,
    )
)
def test_changelog_records_are_what_python_builds(states: dict[int, dict[bytes, bytes]]) -> None:
    expected = [
        OutputRecord("profile-changelog", partition, key, state)
        for partition, per_partition in states.items()
        for key, state in per_partition.items()
    ]
    records = changelog_records("profile-changelog", states, OutputRecord)
    assert records == expected
    assert all(type(record) is OutputRecord for record in records)
    assert not any(gc.is_tracked(record) for record in records)


class _Pair(NamedTuple):
    left: int
    right: int


@pytest.mark.parametrize("cls", [tuple, _Pair, dict, OutputRecord])
def test_a_class_other_than_a_named_tuple_of_the_right_size_is_refused(cls: type) -> None:
    with pytest.raises(TypeError, match="named tuple of 6 fields"):
        input_records([Message(topic="t", partition=0, offset=0)], cls, [])
