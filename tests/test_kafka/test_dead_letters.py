"""Fitting a dead letter under the producer's limit: never over it, reason and prefix kept."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException, Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.kafka.dead_letters import (
    MIN_LIMIT_BYTES,
    ORIGINAL_BYTES_HEADER,
    TRUNCATED_HEADER,
    DeadLetter,
    dead_letter_headers,
    fit_dead_letter,
    record_size,
)

RELAXED = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

header_names = st.one_of(
    st.sampled_from(["dlq.detail", "dlq.topic", "dlq.offset", "traceparent"]),
    st.text(min_size=1, max_size=40),
)
sizes = st.one_of(st.integers(0, 64), st.integers(MIN_LIMIT_BYTES - 64, 3 * MIN_LIMIT_BYTES))
headers = st.lists(st.tuples(header_names, st.binary(max_size=3000)), max_size=12)
reasons = st.text(
    alphabet=st.characters(codec="ascii", categories=["Ll", "Nd"], include_characters="_"),
    min_size=1,
    max_size=40,
)


@st.composite
def letters(draw: st.DrawFn) -> tuple[DeadLetter, str]:
    reason = draw(reasons)
    size = draw(sizes)
    value = bytes(i % 251 for i in range(size))  # cheap and not all one byte
    key = draw(st.one_of(st.none(), st.binary(max_size=2000)))
    extra = draw(headers)
    return DeadLetter(
        key, value, dead_letter_headers(reason, "why", ("topic", "t")) + extra
    ), reason


def _wire(letter: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    return [*letter.headers]


def _headers(letter: DeadLetter) -> dict[str, bytes]:
    return dict(letter.headers)


@RELAXED
@given(letters(), st.integers(MIN_LIMIT_BYTES, 3 * MIN_LIMIT_BYTES))
def test_a_fitted_letter_never_exceeds_the_limit_and_keeps_reason_and_prefix(case, limit):
    letter, reason = case
    fitted = fit_dead_letter(letter, limit)
    assert record_size(*fitted) <= limit
    if record_size(*letter) <= limit:
        assert fitted == letter, "a letter that fits is not touched"
        return
    found = _headers(fitted)
    assert found["dlq.reason"] == reason.encode()
    assert found[TRUNCATED_HEADER] == b"true"
    assert found[ORIGINAL_BYTES_HEADER] == str(len(letter.value)).encode()
    assert letter.value.startswith(fitted.value)
    # The prefix is as long as the room left once the headers and the key are in.
    assert limit - record_size(*fitted) < 1 or fitted.value == letter.value


@RELAXED
@given(letters(), st.integers(MIN_LIMIT_BYTES, 3 * MIN_LIMIT_BYTES))
def test_refitting_under_a_lower_limit_keeps_the_first_original_length(case, limit):
    letter, _ = case
    once = fit_dead_letter(letter, limit + MIN_LIMIT_BYTES)
    twice = fit_dead_letter(once, limit)
    if record_size(*letter) > limit + MIN_LIMIT_BYTES:
        assert _headers(twice)[ORIGINAL_BYTES_HEADER] == str(len(letter.value)).encode()
    assert record_size(*twice) <= limit


@pytest.mark.parametrize("size", [999_950, 1_048_000, 5_000_000])
def test_librdkafka_accepts_every_fitted_letter(size):
    # produce() checks message.max.bytes locally, before any broker is involved.
    limit = 1_000_000
    producer = Producer(
        {"bootstrap.servers": "127.0.0.1:9", "message.max.bytes": limit, "log_level": 0}
    )
    headers = dead_letter_headers("event_too_large", "x" * 5000, ("topic", "profile-changes"))
    headers += [("traceparent", b"00-" + b"a" * 60), ("big", b"y" * 400_000)]
    letter = DeadLetter(b"c-1", b"v" * size, headers)
    with pytest.raises(KafkaException):
        producer.produce("t", letter.value, letter.key, headers=_wire(letter))
    fitted = fit_dead_letter(letter, limit)
    producer.produce("t", fitted.value, fitted.key, headers=_wire(fitted))
    assert len(fitted.value) > limit * 0.7, "the prefix keeps most of the bytes"
    assert _headers(fitted)["dlq.dropped_headers"] == b"1"
    assert _headers(fitted)["traceparent"] == b"00-" + b"a" * 60
    producer.purge()


def test_a_limit_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="at least"):
        fit_dead_letter(DeadLetter(None, b"x", []), MIN_LIMIT_BYTES - 1)
