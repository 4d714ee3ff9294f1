"""Records to produce, as the processor and the connectors hand them to
:class:`streams.kafka.batch_delivery.BatchDelivery`, dead letters among them."""

from __future__ import annotations

from typing import NamedTuple

from streams.kafka.dead_letters import DeadLetter, Headers, fit_dead_letter

Origin = tuple[int, int]
"""An input record's ``(partition, offset)``: where an output came from."""


class OutputRecord(NamedTuple):
    """One record to produce; ``partition`` is explicit so outputs mirror input partitions."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    timestamp_ms: int | None = None
    origin: Origin | None = None  # the input record it came from, to park that one if refused


def fitted_letter(letter: OutputRecord, limit: int) -> OutputRecord:
    """A dead letter fitted under ``limit`` bytes (:func:`fit_dead_letter`); a tombstone stays
    one."""
    key, value, headers = fit_dead_letter(
        DeadLetter(letter.key, letter.value or b"", letter.headers or []), limit
    )
    kept = value if letter.value is not None else None
    return letter._replace(key=key, value=kept, headers=headers)
