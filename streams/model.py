"""Typed records shared by codecs, the merge and the processor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

Value = None | bool | int | float | str
"""A property value: a JSON scalar. ``None`` unsets the property."""

UNKNOWN_TS = -1
"""Timestamp of legacy data whose update time is unknown; loses to any known time."""


class Op(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(slots=True)
class ChangeEvent:
    """A validated input event; every timestamp is integer epoch milliseconds.

    Not frozen: it is built once per input record on the hot path, and a frozen dataclass
    costs a third of the decoder's time; nothing mutates it after decoding.
    """

    customer_id: str
    source: str
    op: Op
    timestamp: int
    properties: Mapping[str, Value] = field(default_factory=dict)
    property_timestamps: Mapping[str, int] = field(default_factory=dict)
    event_id: str | None = None

    def timestamp_of(self, name: str) -> int:
        return self.property_timestamps.get(name, self.timestamp)


class PropertyState(NamedTuple):
    """What the processor keeps per customer and property (a tuple: cheap on the hot path)."""

    value: Value
    last_update: int
    source: str


@dataclass(slots=True)
class Profile:
    """One customer's state: properties plus the delete watermark (epoch ms)."""

    properties: dict[str, PropertyState] = field(default_factory=dict)
    deleted_at: int | None = None

    def is_empty(self) -> bool:
        return not self.properties and self.deleted_at is None


class StaleReason(StrEnum):
    OLDER = "older"  # stored timestamp is newer
    TIE_LOST = "tie_lost"  # equal timestamp, lost the deterministic tie-break
    DUPLICATE = "duplicate"  # identical to what is stored
    DELETED = "deleted"  # at or before the customer's delete watermark


class StaleWrite(NamedTuple):
    """A dropped write, published on the stale topic for audit."""

    customer_id: str
    source: str
    event_id: str | None
    property: str | None  # None for a superseded delete
    value: Value
    timestamp: int
    stored_last_update: int | None
    reason: StaleReason


class Upsert(NamedTuple):
    """An accepted change: only the properties this event changed."""

    customer_id: str
    op: Op
    properties: Mapping[str, PropertyState]
    deleted_at: int | None
    source: str
    event_id: str | None
    processed_at: int
