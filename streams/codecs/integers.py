"""One rule for integers on every path: outside the signed 64-bit range, refused.

An integer literal in a JSON event (a property value, a timestamp, anywhere) must lie in
[-2^63, 2^63 - 1]; otherwise the event is refused with the reason ``integer_out_of_range``.
orjson alone cannot tell: it reads 2^63..2^64-1 as ints but integers beyond [-2^63, 2^64) as
floats, so ``1e30`` and ``1000000000000000000000000000000`` arrive alike. Every integer outside
the range has at least 19 digits, so a text without 19 digits in a row is settled at once; a
text with them is read again by the standard library, whose integers are exact.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from streams.errors import InvalidEventError
from streams.logs import clip_name

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
INTEGER_OUT_OF_RANGE = "integer_out_of_range"
RANGE_TEXT = "outside the signed 64-bit range"
_WIDE_DIGITS = len(str(I64_MAX))  # 19: no integer of fewer digits is out of range
_DIGIT_RUN = b"0" * _WIDE_DIGITS
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONGEST_EXACT = 4000  # digits int() reads without hitting CPython's conversion limit


def may_hold_wide_integer(data: bytes) -> bool:
    """False when ``data`` has no run of 19 digits: then no integer in it is out of range."""
    return _DIGIT_RUN in data.translate(_DIGITS_AS_ZERO)


def in_range(value: int) -> bool:
    return I64_MIN <= value <= I64_MAX


def out_of_range(where: str) -> InvalidEventError:
    return InvalidEventError(INTEGER_OUT_OF_RANGE, f"{where} is an integer {RANGE_TEXT}")


def loads_exact(data: bytes | str) -> Any:
    """``orjson.loads(data)``, except that integers are exact Python ints (beyond 64 bits too)
    when the text could hold one orjson would turn into a float. Raises orjson's
    JSONDecodeError for what is not JSON."""
    doc = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if not may_hold_wide_integer(raw):
        return doc
    try:
        return json.loads(raw, parse_int=_exact_int)
    except (ValueError, RecursionError):  # nesting deeper than Python's parser goes
        return doc


def wide_integer_path(value: Any, path: str = "") -> str | None:
    """Where the first integer out of range sits in a decoded document (``properties.age``,
    ``[2].data``), or None."""
    kind = type(value)
    if kind is int:
        return None if in_range(value) else (path or "the value")
    if kind is dict:
        for key, item in value.items():
            name = clip_name(str(key))
            found = wide_integer_path(item, f"{path}.{name}" if path else name)
            if found is not None:
                return found
    elif kind is list:
        for index, item in enumerate(value):
            found = wide_integer_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def reject_wide_integers(data: bytes) -> None:
    """Raise ``integer_out_of_range`` when the JSON text ``data`` holds an integer literal out
    of range, wherever it sits."""
    if not may_hold_wide_integer(data):
        return
    try:
        doc = json.loads(data, parse_int=_exact_int)
    except (ValueError, RecursionError):
        return  # not JSON the standard library reads: the caller judges it otherwise
    where = wide_integer_path(doc)
    if where is not None:
        raise out_of_range(where)


def dumps_event(event: Any) -> bytes:
    """``orjson.dumps(event)``; an integer it cannot write (beyond [-2^63, 2^64)) is refused as
    ``integer_out_of_range``, other errors are orjson's."""
    try:
        return orjson.dumps(event)
    except orjson.JSONEncodeError:
        where = wide_integer_path(event)
        if where is not None:
            raise out_of_range(where) from None
        raise


def _exact_int(text: str) -> int:
    if len(text) > _LONGEST_EXACT:  # out of range in any case: its exact value does not matter
        return I64_MIN - 1 if text.startswith("-") else I64_MAX + 1
    return int(text)
