"""Input timestamps (UNIX seconds or ISO-8601) to integer epoch milliseconds, and back."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.codecs.integers import I64_MAX, I64_MIN, out_of_range
from streams.errors import InvalidEventError
from streams.model import UNKNOWN_TS

MAX_EPOCH_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant ``datetime`` (and most sinks) can represent."""

_MAX_SECONDS = MAX_EPOCH_MS // 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(value: object, field: str) -> int:
    """Epoch ms from int/float UNIX seconds or an ISO-8601 string; ``-1`` (unknown) stays ``-1``.

    Raises ``InvalidEventError("bad_timestamp")`` for other negatives, NaN/inf, years past 9999 and
    non-timestamp types (``bool`` is not a number here).
    """
    # ``type() is`` rather than isinstance: bool is an int subclass and must be rejected.
    if type(value) is int:
        if 0 <= value <= _MAX_SECONDS:
            return value * 1000
        if value == UNKNOWN_TS:
            return UNKNOWN_TS
        if not I64_MIN <= value <= I64_MAX:
            raise out_of_range(field)
        raise _out_of_range(field, value)
    if type(value) is float:
        # Chained comparison is False for NaN; inf fails the upper bound.
        if 0.0 <= value <= _MAX_SECONDS + 1.0:
            ms = round(value * 1000)
            if ms <= MAX_EPOCH_MS:
                return ms
        if value == UNKNOWN_TS:
            return UNKNOWN_TS
        raise _out_of_range(field, value)
    if type(value) is str:
        return _iso_to_ms(value, field)
    raise InvalidEventError(
        "bad_timestamp",
        f"{field} must be UNIX seconds or an ISO-8601 string, not {type(value).__name__}",
    )


def ms_to_seconds(ms: int) -> int | float:
    """Epoch seconds for the query API: an int when whole, ``-1`` when unknown."""
    if ms == UNKNOWN_TS:
        return UNKNOWN_TS
    whole, rest = divmod(ms, 1000)
    return whole if rest == 0 else ms / 1000


def _iso_to_ms(text: str, field: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)  # 3.11+: accepts "Z" and offsets
    except ValueError as exc:
        # The value itself is not echoed: it is free text and may be personal data.
        raise InvalidEventError("bad_timestamp", f"{field} is not an ISO-8601 timestamp") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # naive means UTC
    delta = parsed - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    ms, rest = divmod(micros, 1000)
    if rest > 500 or (rest == 500 and ms % 2):  # round half to even, like round() on floats
        ms += 1
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise InvalidEventError("bad_timestamp", f"{field} is before 1970 or after 9999")
    return ms


def _out_of_range(field: str, seconds: float) -> InvalidEventError:
    hint = ""
    if _MAX_SECONDS < seconds <= MAX_EPOCH_MS:
        hint = " (milliseconds? expected seconds)"
    return InvalidEventError(
        "bad_timestamp",
        f"{field}={seconds!r} is not UNIX seconds between 1970 and 9999{hint}",
    )
