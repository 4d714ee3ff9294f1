"""A dead letter as a record to produce: fitted under the limit, where it goes and where it came
from kept, a tombstone still a tombstone."""

from __future__ import annotations

from streams.kafka.dead_letters import (
    MIN_LIMIT_BYTES,
    TRUNCATED_HEADER,
    dead_letter_headers,
    record_size,
)
from streams.kafka.output_records import OutputRecord, fitted_letter

HEADERS = dead_letter_headers("bad_upsert", "why", ("topic", "t"))


def test_a_letter_that_fits_is_left_alone() -> None:
    letter = OutputRecord("dlq", 3, b"k", b"v", HEADERS, origin=(3, 7))
    assert fitted_letter(letter, MIN_LIMIT_BYTES) == letter


def test_a_large_letter_is_cut_under_the_limit_keeping_topic_partition_and_origin() -> None:
    value = b"x" * (2 * MIN_LIMIT_BYTES)
    letter = OutputRecord("dlq", 3, b"k", value, HEADERS, origin=(3, 7))
    fitted = fitted_letter(letter, MIN_LIMIT_BYTES)
    assert record_size(fitted.key, fitted.value, fitted.headers) <= MIN_LIMIT_BYTES
    assert (fitted.topic, fitted.partition, fitted.origin) == ("dlq", 3, (3, 7))
    assert fitted.value
    assert value.startswith(fitted.value)
    assert dict(fitted.headers or [])[TRUNCATED_HEADER] == b"true"


def test_a_tombstone_stays_a_tombstone() -> None:
    big_headers = [*HEADERS, ("traceparent", b"t" * (2 * MIN_LIMIT_BYTES))]
    letter = OutputRecord("dlq", 0, b"k", None, big_headers)
    fitted = fitted_letter(letter, MIN_LIMIT_BYTES)
    assert fitted.value is None
    assert dict(fitted.headers or [])[TRUNCATED_HEADER] == b"true"
