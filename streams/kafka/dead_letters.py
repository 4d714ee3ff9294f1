"""Dead letters for every producer of the package: their headers, and fitting one under the
producer's ``message.max.bytes`` so that parking a record can never itself be refused for size.

A letter that fits is left alone. One that does not keeps its reason, the key (capped), its
other headers (``dlq.*`` first, values capped) as far as they fit in a quarter of the limit
(``dlq.dropped_headers`` counts the rest) and the longest prefix of the value that fits;
``dlq.truncated: true`` and ``dlq.original_bytes: N`` (the value's full length) say so.
"""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import KafkaError

Headers = list[tuple[str, bytes]]

DLQ_PREFIX = "dlq."
REASON_HEADER = "dlq.reason"
TRUNCATED_HEADER = "dlq.truncated"
ORIGINAL_BYTES_HEADER = "dlq.original_bytes"
DROPPED_HEADERS_HEADER = "dlq.dropped_headers"

# librdkafka counts a record as key + value + headers + this much framing (measured: 36).
RECORD_OVERHEAD_BYTES = 64
# Per header: name and value lengths as varints (at most 5 bytes each).
HEADER_OVERHEAD_BYTES = 10
# Caps when a letter must shrink; reasons are short codes, details are sentences.
MAX_REASON_BYTES = 256
MAX_HEADER_VALUE_BYTES = 1024
MAX_KEY_BYTES = 1024
# The smallest limit every letter can be fitted under (all caps together stay well below).
MIN_LIMIT_BYTES = 16 * 1024
# What a letter is fitted under when the broker refused the letter fitted to the full limit
# (a topic whose max.message.bytes is below the producer's).
MINIMAL_LIMIT_BYTES = MIN_LIMIT_BYTES

# Errors that say nothing about the record (the broker or topic is unavailable, a timeout):
# a record refused with one of them is retried without bound, never parked.
_UNAVAILABLE = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._QUEUE_FULL,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._DESTROY,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.KAFKA_STORAGE_ERROR,
    }
)
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


_FITTING_HEADERS = frozenset(
    {REASON_HEADER, TRUNCATED_HEADER, ORIGINAL_BYTES_HEADER, DROPPED_HEADERS_HEADER}
)


class DeadLetter(NamedTuple):
    key: bytes | None
    value: bytes
    headers: Headers


def dead_letter_headers(reason: str, detail: str, *fields: tuple[str, object]) -> Headers:
    """The headers every dead letter carries: ``dlq.reason``, ``dlq.detail``, then
    ``dlq.<name>`` for each ``(name, value)`` of ``fields`` (where it came from), as text."""
    headers = [("dlq.reason", reason.encode()), ("dlq.detail", detail.encode())]
    headers.extend((f"dlq.{name}", str(value).encode()) for name, value in fields)
    return headers


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None) -> int:
    """An upper bound of the size librdkafka checks against ``message.max.bytes``."""
    size = RECORD_OVERHEAD_BYTES + len(key or b"") + len(value or b"")
    for name, header_value in headers or ():
        size += HEADER_OVERHEAD_BYTES + len(name.encode()) + len(header_value or b"")
    return size


def fit_dead_letter(letter: DeadLetter, limit: int) -> DeadLetter:
    """``letter`` itself if it fits in ``limit`` bytes, else its truncated form (see above)."""
    if limit < MIN_LIMIT_BYTES:
        raise ValueError(f"a dead letter limit must be at least {MIN_LIMIT_BYTES} bytes")
    key, value, headers = letter
    if record_size(key, value, headers) <= limit:
        return letter
    reason = [(name, _cap(name, data)) for name, data in headers if name == REASON_HEADER]
    # A letter fitted before (and refused by a topic with a lower limit) keeps its first count.
    original = [data for name, data in headers if name == ORIGINAL_BYTES_HEADER]
    fitted = [
        *reason[:1],
        (TRUNCATED_HEADER, b"true"),
        (ORIGINAL_BYTES_HEADER, original[0][:20] if original else str(len(value)).encode()),
    ]
    # Then the other dlq.* headers, then the original ones, in a quarter of the limit.
    others = [(name, _cap(name, data)) for name, data in headers if name.startswith(DLQ_PREFIX)]
    others = [h for h in others if h[0] not in _FITTING_HEADERS]
    others += [h for h in headers if not h[0].startswith(DLQ_PREFIX)]
    room = limit // 4
    dropped = 0
    for header in others:
        size = record_size(None, None, [header]) - RECORD_OVERHEAD_BYTES
        if size <= room:
            fitted.append(header)
            room -= size
        else:
            dropped += 1
    if dropped:
        fitted.append((DROPPED_HEADERS_HEADER, str(dropped).encode()))
    key = key[:MAX_KEY_BYTES] if key is not None else None
    room = limit - record_size(key, None, fitted)
    return DeadLetter(key, value[: max(room, 0)], fitted)


def _cap(name: str, data: bytes) -> bytes:
    return data[: MAX_REASON_BYTES if name == REASON_HEADER else MAX_HEADER_VALUE_BYTES]


def is_unavailable(error: KafkaError) -> bool:
    """True when the error is about the broker or the topic, not the record."""
    return error.code() in _UNAVAILABLE or error.retriable()


def refusal_reason(error: KafkaError) -> str:
    """The dead letter's reason for a record Kafka refused for good."""
    return "output_too_large" if error.code() in _TOO_LARGE else "kafka_refused"
