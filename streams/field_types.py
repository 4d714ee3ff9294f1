"""Field types of a destination or a payload, and the conversion of profile values to them.

Shared by the REST sink (values it sends) and the webhooks (values they receive), so both agree
on what ``bool`` or ``datetime`` accept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from streams.model import Value

FieldType = Literal["string", "int", "float", "bool", "datetime"]
JsonScalar = None | bool | int | float | str

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


def convert(value: Value, field_type: FieldType) -> JsonScalar:
    """``value`` as ``field_type``; ``None`` (an unset property) stays ``None``."""
    if value is None:
        return None
    converter = _CONVERTERS[field_type]
    try:
        return converter(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"cannot convert {type(value).__name__} to {field_type}") from exc


def _to_string(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    return value if isinstance(value, str) else repr(value)


def _to_int(value: bool | int | float | str) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    return int(value.strip())


def _to_float(value: bool | int | float | str) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    number = float(value.strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_bool(value: bool | int | float | str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    raise ValueError("not a boolean")


def _to_datetime(value: bool | int | float | str) -> str:
    """Epoch milliseconds (or an ISO-8601 string) as ISO-8601 UTC with milliseconds."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    else:
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_CONVERTERS: dict[FieldType, Callable[[bool | int | float | str], JsonScalar]] = {
    "string": _to_string,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "datetime": _to_datetime,
}
