"""Convert a whole column of a chunk at once: C-level ``map`` when every value is well-formed,
the per-value converters of :mod:`streams.bootstrap.convert` otherwise.

Throughput lives here. A typical column of a typical chunk (no empty cells, no bad values) is
converted by one ``map`` over a builtin (``int``, ``float``, a dict lookup, a compiled regex)
plus a C-level check; only a column holding an empty or bad value pays Python per value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import tzinfo
from typing import Any, NamedTuple

from streams.bootstrap.convert import (
    ConversionError,
    Converter,
    datetime_converter,
    epoch_ms,
    iso_datetimes_to_seconds,
    to_bool,
    to_email,
    to_float,
    to_int,
    to_string,
)
from streams.codecs.integers import I64_MAX, I64_MIN
from streams.emails import EMAIL_MAX, EMAIL_PATTERN

MEMO_LIMIT = 200_000
# Spellings to_bool accepts, looked up without Python code per value; others take the slow path.
_BOOL_TABLE: dict[object, bool] = {
    spelling: value
    for words, value in (
        (("true", "t", "yes", "y", "1"), True),
        (("false", "f", "no", "n", "0"), False),
    )
    for word in words
    for spelling in (word, word.upper(), word.capitalize())
}
_BOOL_TABLE.update({True: True, False: False})


class Column(NamedTuple):
    """``values`` aligned with the input; positions in ``empty`` or ``errors`` hold None.

    ``errors`` holds (reason, detail), not the exceptions: a kept exception keeps its traceback
    and so the frames of a whole chunk alive until the cyclic GC finds them.
    """

    values: Sequence[Any]
    empty: list[int]
    errors: dict[int, tuple[str, str]]


FastPath = Callable[[Sequence[Any]], Sequence[Any] | Column | None]
"""Converts a column in C; returns None (or raises) to hand it to the slow path, or a Column
when it converted most values and knows which failed."""


class ColumnConverter:
    """One mapped column: a fast path for the common case and a per-value fallback.

    Empty cells (None or "") are set aside first: the fast path sees ``placeholder`` there,
    so an optional column with gaps still converts in C.
    """

    __slots__ = ("_fast", "_placeholder", "_slow")

    def __init__(self, fast: FastPath | None, slow: Converter, placeholder: object = "") -> None:
        self._fast = fast
        self._slow = slow
        self._placeholder = placeholder

    def __call__(self, values: Sequence[Any]) -> Column:
        if self._fast is None:
            return slow_column(values, self._slow)
        empty: list[int] = []
        work = values
        if "" in values or None in values:
            empty = [i for i, v in enumerate(values) if v is None or v == ""]
            if len(empty) == len(values):
                return Column([None] * len(values), empty, {})
            work = list(values)
            for index in empty:
                work[index] = self._placeholder
        try:
            converted = self._fast(work)
        except (ValueError, TypeError, KeyError, OverflowError):
            converted = None
        if converted is None:
            return slow_column(values, self._slow)
        if isinstance(converted, Column):
            result, errors = converted.values, converted.errors
        else:
            result, errors = converted, {}
        if empty:
            result = list(result)
            for index in empty:
                result[index] = None
        return Column(result, empty, errors)


def slow_column(values: Sequence[Any], convert: Converter) -> Column:
    out: list[Any] = []
    empty: list[int] = []
    errors: dict[int, tuple[str, str]] = {}
    append = out.append
    for index, value in enumerate(values):
        if value is None or value == "":
            append(None)
            empty.append(index)
            continue
        try:
            append(convert(value))
        except ConversionError as exc:
            append(None)
            errors[index] = (exc.reason, exc.detail)
    return Column(out, empty, errors)


def property_column(kind: str, *, email: bool, text: bool, tz: tzinfo) -> ColumnConverter:
    """The converter of one mapped property (``email``: the value must be an address)."""
    if kind == "email" or (kind == "string" and email):
        return ColumnConverter(_fast_email, to_email, "a@example.com")
    if kind == "string":
        return ColumnConverter(_fast_text if text else _fast_str, to_string)
    if kind == "int":
        return ColumnConverter(_fast_int_text if text else _fast_int, to_int, "0" if text else 0)
    if kind == "float":
        placeholder = "0" if text else 0.0
        return ColumnConverter(_fast_float_text if text else _fast_float, to_float, placeholder)
    if kind == "bool":
        return ColumnConverter(_fast_bool, to_bool, "true")
    if kind == "datetime":
        return memo_column(
            datetime_converter(tz),
            "1970-01-01" if text else 0,
            batch=lambda values: iso_datetimes_to_seconds(values, tz),
        )
    raise ValueError(f"unknown property type {kind!r}")


def memo_column(
    convert: Converter,
    placeholder: object,
    batch: Callable[[Sequence[Any]], Sequence[Any]] | None = None,
) -> ColumnConverter:
    """For costly conversions of repeating values (dates): remember results per value.
    ``batch`` converts the new values of a chunk at once where it can (None: ``convert`` is to
    decide), and must make of each exactly what ``convert`` makes."""
    memo: dict[Any, Any] = {}

    def fast(values: Sequence[Any]) -> Sequence[Any] | Column | None:
        out = list(map(memo.get, values))  # None: not seen yet (results are never None)
        if None not in out:
            return out
        missing = [i for i, result in enumerate(out) if result is None]
        quick = batch([values[i] for i in missing]) if batch is not None else [None] * len(missing)
        errors: dict[int, tuple[str, str]] = {}
        for index, result in zip(missing, quick, strict=True):
            if result is not None:
                out[index] = remember(values[index], result)
                continue
            try:
                out[index] = slow(values[index])
            except ConversionError as exc:
                errors[index] = (exc.reason, exc.detail)
        return Column(out, [], errors)

    def remember(value: Any, result: Any) -> Any:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[value] = result
        return result

    def slow(value: Any) -> Any:
        try:
            return memo[value]
        except (KeyError, TypeError):
            pass
        result = convert(value)
        with suppress(TypeError):  # an unhashable value is not remembered
            remember(value, result)
        return result

    return ColumnConverter(fast, slow, placeholder)


def seconds_column(tz: tzinfo, reason: str, latest_ms: int | None = None) -> ColumnConverter:
    """Update times (``latest_ms``: the future limit) as UNIX seconds, floats or ints."""
    latest = math.inf if latest_ms is None else latest_ms / 1000

    def fast(values: Sequence[Any]) -> Sequence[Any] | None:
        if bool in set(map(type, values)):  # float(True) is 1.0: not a time
            return None
        seconds = list(map(float, values))
        # min() and max() pass over a NaN, so finiteness is checked on its own.
        if (
            seconds
            and all(map(math.isfinite, seconds))
            and 0.0 <= min(seconds) <= max(seconds) <= latest
        ):
            return seconds
        return None

    def slow(value: Any) -> Any:
        # A number is taken as given, as the fast path takes it: a value never depends on
        # whether another row of its chunk is bad.
        if type(value) is not bool:  # epoch_ms rejects it
            with suppress(TypeError, ValueError):
                seconds = float(value)
                if 0.0 <= seconds <= latest:
                    return seconds
        ms = epoch_ms(value, tz, reason)
        if ms / 1000 > latest:
            raise ConversionError("future_timestamp", "update time is in the future")
        return ms / 1000

    return ColumnConverter(fast, slow)


def _fast_text(values: Sequence[Any]) -> Sequence[Any] | None:
    return values


def _fast_str(values: Sequence[Any]) -> Sequence[Any] | None:
    return values if set(map(type, values)) <= {str} else None


def _fast_email(values: Sequence[Any]) -> Sequence[Any] | Column | None:
    if not set(map(type, values)) <= {str}:
        return None
    matches = list(map(EMAIL_PATTERN.fullmatch, values))
    if all(matches) and max(map(len, values), default=0) <= EMAIL_MAX:
        return values
    out = list(values)
    errors: dict[int, tuple[str, str]] = {}
    # A value of the pattern may still be too long: all but the good ones are checked.
    bad = [
        i
        for i, (match, value) in enumerate(zip(matches, values, strict=True))
        if match is None or len(value) > EMAIL_MAX
    ]
    for index in bad:
        try:
            out[index] = to_email(values[index])  # surrounding spaces are forgiven
        except ConversionError as exc:
            out[index] = None
            errors[index] = (exc.reason, exc.detail)
    return Column(out, [], errors)


def _fast_int_text(values: Sequence[Any]) -> Sequence[Any] | None:
    out = list(map(int, values))
    return out if not out or (min(out) >= I64_MIN and max(out) <= I64_MAX) else None


def _fast_int(values: Sequence[Any]) -> Sequence[Any] | None:
    if set(map(type, values)) <= {int}:
        return _fast_int_text(values)
    return None


def _fast_float_text(values: Sequence[Any]) -> Sequence[Any] | None:
    out = list(map(float, values))
    return out if all(map(math.isfinite, out)) else None


def _fast_float(values: Sequence[Any]) -> Sequence[Any] | None:
    if set(map(type, values)) <= {float, int}:
        return _fast_float_text(values)
    return None


def _fast_bool(values: Sequence[Any]) -> Sequence[Any] | None:
    if set(map(type, values)) <= {str, bool}:
        return list(map(_BOOL_TABLE.__getitem__, values))
    return None
