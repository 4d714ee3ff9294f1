"""Cell values to property values: one plain function per mapping type, chosen once per column.

Every converter takes what a source yields (CSV text, JSON scalars, database values) and returns
a JSON scalar or raises :class:`ConversionError` with a short reason code. Messages never echo
the value: snapshots hold personal data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from streams.codecs.integers import INTEGER_OUT_OF_RANGE, RANGE_TEXT, in_range
from streams.codecs.timestamps import MAX_EPOCH_MS
from streams.emails import is_email
from streams.errors import StreamsError

Converter = Callable[[object], object]

_MAX_SECONDS = MAX_EPOCH_MS / 1000
_MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_LONGEST_INTEGER = 4000  # digits int() converts (CPython's limit is 4300)
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_SINCE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class ConversionError(StreamsError, ValueError):
    """A value does not convert; ``reason`` is a short code for the job report."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def to_string(value: object) -> object:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConversionError("bad_string", "not a finite number")
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    raise ConversionError("bad_string", f"{type(value).__name__} is not a scalar")


def to_int(value: object) -> object:
    kind = type(value)
    if kind is int:
        result = value
    elif kind is str:
        text = value.strip()  # type: ignore[attr-defined]
        try:
            result = int(text)
        except ValueError:
            if _wide_integer_text(text):  # beyond int()'s digit limit
                raise _out_of_range() from None
            result = _integral(_parse_float(text, "bad_int"), "bad_int")
    elif kind is float or kind is Decimal:
        result = _integral(value, "bad_int")  # type: ignore[arg-type]
    else:
        raise ConversionError("bad_int", f"{kind.__name__} is not an integer")
    if not in_range(result):  # type: ignore[arg-type]
        raise _out_of_range()
    return result


def to_float(value: object) -> object:
    kind = type(value)
    if kind is float:
        result: float = value  # type: ignore[assignment]
    elif kind is int or kind is Decimal:
        try:
            result = float(value)  # type: ignore[arg-type]
        except OverflowError as exc:  # an integer of hundreds of digits
            raise ConversionError("bad_float", "not a finite number") from exc
    elif kind is str:
        result = _parse_float(value.strip(), "bad_float")  # type: ignore[attr-defined]
    else:
        raise ConversionError("bad_float", f"{kind.__name__} is not a number")
    if not math.isfinite(result):
        raise ConversionError("bad_float", "not a finite number")
    return result


def to_bool(value: object) -> object:
    kind = type(value)
    if kind is bool:
        return value
    if kind is str:
        text = value.strip().casefold()  # type: ignore[attr-defined]
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConversionError("bad_bool", "expected true/false, yes/no, 1/0")
    if kind is int and value in (0, 1):
        return value == 1
    raise ConversionError("bad_bool", f"{kind.__name__} is not a boolean")


def to_email(value: object) -> object:
    text = to_string(value).strip()  # type: ignore[attr-defined]
    if not is_email(text):
        raise ConversionError("bad_email", "not a valid email address")
    return text


def epoch_ms(
    value: object, tz: tzinfo, reason: str = "bad_datetime", *, before_1970: bool = False
) -> int:
    """Epoch ms from UNIX seconds, ISO-8601 text or a date/datetime; naive values are in ``tz``.

    Update times are 1970..9999; ``before_1970`` admits older values (birthdays).
    """
    floor = _MIN_MS if before_1970 else 0
    kind = type(value)
    if kind is int and not in_range(value):  # type: ignore[arg-type]
        raise _out_of_range()
    if kind is int or kind is float or kind is Decimal:
        return _seconds_to_ms(float(value), reason, floor)  # type: ignore[arg-type]
    if kind is str:
        text = value.strip()  # type: ignore[attr-defined]
        if text[4:5] == "-" or ":" in text:  # looks like ISO-8601 (a failed float() is costly)
            try:
                iso: datetime | None = datetime.fromisoformat(text)
            except ValueError:
                iso = None
            if iso is not None:
                return _datetime_to_ms(iso, tz, reason, floor)
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError as exc:
                raise ConversionError(reason, "not UNIX seconds or ISO-8601") from exc
            return _datetime_to_ms(parsed, tz, reason, floor)
        try:
            return _seconds_to_ms(seconds, reason, floor)
        except ConversionError:
            if _wide_integer_text(text):
                raise _out_of_range() from None
            raise
    if isinstance(value, datetime):
        return _datetime_to_ms(value, tz, reason, floor)
    if isinstance(value, date):
        return _datetime_to_ms(datetime.combine(value, time()), tz, reason, floor)
    raise ConversionError(reason, f"{kind.__name__} is not a timestamp")


def to_customer_id(value: object) -> object:
    """Ids are text; whole numbers (a database's integer key) are accepted and written out."""
    if type(value) is str:
        if value[:1] == "\x00":
            raise ConversionError("bad_id", "id starts with NUL")
        return value
    if type(value) is int:
        if not in_range(value):
            raise _out_of_range()
        return str(value)
    raise ConversionError("bad_id", f"id is {type(value).__name__}, not text")


def ms_to_seconds(ms: int) -> int | float:
    """What events carry: whole seconds as an int, else seconds with millisecond precision."""
    whole, rest = divmod(ms, 1000)
    return whole if rest == 0 else ms / 1000


def datetime_converter(tz: tzinfo) -> Converter:
    """``datetime`` properties become UNIX seconds (Bloomreach's representation)."""

    def convert(value: object) -> object:
        return ms_to_seconds(epoch_ms(value, tz, before_1970=True))

    return convert


def iso_datetimes_to_seconds(values: Sequence[object], tz: tzinfo) -> list[int | float | None]:
    """What ``datetime_converter(tz)`` makes of each value, for ISO-8601 text in the form it
    tries first, at a fifth of its cost (a new date costs a Python call per value: thousands
    of birthdays per chunk); None where that converter is to decide (anything else, errors).

    A naive time's offset is ``tz.utcoffset`` of it as it stands, as in ``_datetime_to_ms``
    (which attaches ``tz`` and subtracts: the same wall time, the same fold).
    """
    parse, offset = datetime.fromisoformat, tz.utcoffset
    out: list[int | float | None] = []
    for value in values:
        if type(value) is not str or value[4:5] != "-":
            out.append(None)
            continue
        try:
            parsed = parse(value)
        except ValueError:
            out.append(None)
            continue
        if parsed.tzinfo is not None:
            delta = parsed - _EPOCH
        else:
            local = offset(parsed)
            if local is None:
                out.append(None)
                continue
            delta = parsed - _NAIVE_EPOCH - local
        ms = _delta_ms(delta)
        out.append(ms_to_seconds(ms) if _MIN_MS <= ms <= MAX_EPOCH_MS else None)
    return out


def parse_since(text: str, now_ms: int, tz: tzinfo = UTC) -> int:
    """``--since``: a duration back from ``now_ms`` (``90s``, ``30m``, ``24h``, ``7d``, ``2w``)
    or an ISO-8601 instant (naive means ``tz``); epoch ms."""
    match = _SINCE.fullmatch(text.strip())
    if match is not None:
        return now_ms - int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * 1000
    try:
        return _datetime_to_ms(datetime.fromisoformat(text.strip()), tz, "bad_since", 0)
    except (ValueError, ConversionError) as exc:
        raise ConversionError(
            "bad_since", f"{text!r} is neither a duration like 24h nor an ISO-8601 time"
        ) from exc


def format_ms(ms: int) -> str:
    """Epoch ms as ISO-8601 UTC, for reports."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _out_of_range() -> ConversionError:
    return ConversionError(INTEGER_OUT_OF_RANGE, f"an integer {RANGE_TEXT}")


def _wide_integer_text(text: str) -> bool:
    """An integer literal (not 1e30: that is a float) outside the signed 64-bit range."""
    if _INTEGER.fullmatch(text) is None:
        return False
    return len(text) > _LONGEST_INTEGER or not in_range(int(text))


def _integral(value: float | Decimal, reason: str) -> int:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConversionError(reason, "not a finite number")
    if value != int(value):
        raise ConversionError(reason, "not a whole number")
    return int(value)


def _parse_float(text: str, reason: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise ConversionError(reason, "not a number") from exc


def _seconds_to_ms(seconds: float, reason: str, floor: int) -> int:
    if floor / 1000 <= seconds <= _MAX_SECONDS:  # False for NaN
        return round(seconds * 1000)
    hint = " (milliseconds? expected seconds)" if _MAX_SECONDS < seconds <= MAX_EPOCH_MS else ""
    raise ConversionError(reason, f"not UNIX seconds {_range(floor)}{hint}")


def _range(floor: int) -> str:
    return "between 1970 and 9999" if floor == 0 else "between year 1 and 9999"


def _delta_ms(delta: timedelta) -> int:
    """Whole milliseconds, half a millisecond rounded up (exact: no float on the way)."""
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    ms, rest = divmod(micros, 1000)
    return ms + 1 if rest >= 500 else ms


def _datetime_to_ms(value: datetime, tz: tzinfo, reason: str, floor: int) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    ms = _delta_ms(value - _EPOCH)
    if not floor <= ms <= MAX_EPOCH_MS:
        raise ConversionError(reason, f"not {_range(floor)}")
    return ms
