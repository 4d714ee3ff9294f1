"""The merge rules of docs/contract.md: a per-property last-writer-wins map with a delete watermark.

Pure: no I/O and no imports from Kafka, Faust or RocksDB. The state is a CRDT, so the result
of applying any set of events is independent of their order and of duplicates.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.model import (
    ChangeEvent,
    Op,
    Profile,
    PropertyState,
    StaleReason,
    StaleWrite,
    Upsert,
    Value,
)

_RankedValue = tuple[int, int | float | str, float]


def value_rank(value: Value) -> _RankedValue:
    """A total order over property values, used only to break timestamp ties.

    Distinct values never rank equal: the type comes first (so 1, 1.0 and True differ)
    and a float's sign is kept (so -0.0 and 0.0 differ).
    """
    if value is None:
        return (0, 0, 0.0)
    if value is True or value is False:
        return (1, int(value), 0.0)
    if isinstance(value, int):
        return (2, value, 0.0)
    if isinstance(value, float):
        return (3, value, math.copysign(1.0, value))
    return (4, value, 0.0)


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """Tie-break configuration: a higher priority wins an equal-timestamp tie."""

    priorities: Mapping[str, int] = field(default_factory=dict)

    def rank(self, state: PropertyState) -> tuple[int, int, _RankedValue, str]:
        # Timestamp first, then source priority, then value, then the source name,
        # so two different writes never compare equal.
        return (
            state.last_update,
            self.priorities.get(state.source, 0),
            value_rank(state.value),
            state.source,
        )


@dataclass(slots=True)
class MergeResult:
    """What one event did to a profile."""

    changed: dict[str, PropertyState] = field(default_factory=dict)
    stale: list[StaleWrite] = field(default_factory=list)
    deleted_at: int | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.changed) or self.deleted_at is not None


def apply_event(profile: Profile, event: ChangeEvent, policy: MergePolicy) -> MergeResult:
    """Merge ``event`` into ``profile`` in place and report what changed and what was stale."""
    if event.op is Op.DELETE:
        return _apply_delete(profile, event)
    result = MergeResult()
    watermark = profile.deleted_at
    stored_properties = profile.properties
    overrides, default_ts, source = event.property_timestamps, event.timestamp, event.source
    for name, value in event.properties.items():
        timestamp = overrides.get(name, default_ts) if overrides else default_ts
        incoming = PropertyState(value, timestamp, source)
        if watermark is not None and timestamp <= watermark:
            result.stale.append(_stale(event, name, incoming, watermark, StaleReason.DELETED))
            continue
        stored = stored_properties.get(name)
        if stored is not None:
            reason = _losing_reason(policy.rank(incoming), policy.rank(stored))
            if reason is not None:
                result.stale.append(_stale(event, name, incoming, stored.last_update, reason))
                continue
        stored_properties[name] = incoming
        result.changed[name] = incoming
    return result


def _losing_reason(
    incoming: tuple[int, int, _RankedValue, str], stored: tuple[int, int, _RankedValue, str]
) -> StaleReason | None:
    if incoming > stored:
        return None
    if incoming == stored:
        return StaleReason.DUPLICATE
    return StaleReason.TIE_LOST if incoming[0] == stored[0] else StaleReason.OLDER


def _apply_delete(profile: Profile, event: ChangeEvent) -> MergeResult:
    result = MergeResult()
    at = event.timestamp
    if profile.deleted_at is not None and at <= profile.deleted_at:
        result.stale.append(
            StaleWrite(
                customer_id=event.customer_id,
                source=event.source,
                event_id=event.event_id,
                property=None,
                value=None,
                timestamp=at,
                stored_last_update=profile.deleted_at,
                reason=StaleReason.DUPLICATE if at == profile.deleted_at else StaleReason.OLDER,
            )
        )
        return result
    profile.deleted_at = at
    profile.properties = {
        name: state for name, state in profile.properties.items() if state.last_update > at
    }
    result.deleted_at = at
    return result


def _stale(
    event: ChangeEvent, name: str, incoming: PropertyState, stored: int, reason: StaleReason
) -> StaleWrite:
    return StaleWrite(
        customer_id=event.customer_id,
        source=event.source,
        event_id=event.event_id,
        property=name,
        value=incoming.value,
        timestamp=incoming.last_update,
        stored_last_update=stored,
        reason=reason,
    )


def to_upsert(event: ChangeEvent, result: MergeResult, processed_at: int) -> Upsert | None:
    """The normalized upsert for an accepted event; ``None`` when every write was stale."""
    if not result.accepted:
        return None
    return Upsert(
        customer_id=event.customer_id,
        op=event.op,
        properties=result.changed,
        deleted_at=result.deleted_at,
        source=event.source,
        event_id=event.event_id,
        processed_at=processed_at,
    )


def upsert_as_event(upsert: Upsert) -> ChangeEvent:
    """The change event that replays ``upsert``: replaying upserts rebuilds the state."""
    if upsert.op is Op.DELETE:
        return ChangeEvent(
            customer_id=upsert.customer_id,
            source=upsert.source,
            op=Op.DELETE,
            timestamp=upsert.deleted_at if upsert.deleted_at is not None else -1,
            event_id=upsert.event_id,
        )
    return ChangeEvent(
        customer_id=upsert.customer_id,
        source=upsert.source,
        op=Op.UPSERT,
        timestamp=-1,
        properties={name: state.value for name, state in upsert.properties.items()},
        property_timestamps={name: state.last_update for name, state in upsert.properties.items()},
        event_id=upsert.event_id,
    )


def join_profiles(left: Profile, right: Profile, policy: MergePolicy) -> Profile:
    """The least upper bound of two states: what both histories together would produce.

    Restoring from a changelog joins instead of overwriting, so a late write by a worker
    that no longer owns the partition can never roll a profile back.
    """
    marks = [mark for mark in (left.deleted_at, right.deleted_at) if mark is not None]
    watermark = max(marks) if marks else None
    properties: dict[str, PropertyState] = {}
    for name in left.properties.keys() | right.properties.keys():
        a, b = left.properties.get(name), right.properties.get(name)
        best = a if b is None or (a is not None and policy.rank(a) >= policy.rank(b)) else b
        if best is not None and (watermark is None or best.last_update > watermark):
            properties[name] = best
    return Profile(properties, watermark)


def _ordered_int(value: int) -> bytes:
    # Big-endian with the sign bit flipped: byte order equals numeric order for int64.
    return ((value + (1 << 63)) & ((1 << 64) - 1)).to_bytes(8, "big")


def ordered_float(value: float) -> bytes:
    """8 bytes that sort like the float (IEEE 754 bits, sign-flipped)."""
    bits = int.from_bytes(struct.pack(">d", value), "big")
    bits = bits ^ ((1 << 64) - 1) if bits >> 63 else bits | (1 << 63)
    return bits.to_bytes(8, "big")


def _ordered_text(text: str) -> bytes:
    # NUL is escaped and the text terminated so a prefix sorts first, as in str comparison.
    return text.encode().replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def rank_key(state: PropertyState, policy: MergePolicy) -> bytes:
    """Bytes that sort exactly like ``policy.rank(state)``.

    Destinations that cannot run Python (a SQL ``WHERE new.key > old.key``) compare these to
    make the same winner as the processor, ties included.
    """
    kind, number_or_text, sign = value_rank(state.value)
    if kind == 3:
        encoded = ordered_float(float(number_or_text)) + ordered_float(sign)
    elif kind == 4:
        encoded = _ordered_text(str(number_or_text))
    else:
        encoded = _ordered_int(int(number_or_text))
    return b"".join(
        (
            _ordered_int(state.last_update),
            _ordered_int(policy.priorities.get(state.source, 0)),
            bytes((kind,)),
            encoded,
            _ordered_text(state.source),
        )
    )
