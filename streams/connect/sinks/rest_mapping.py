"""Which profile properties reach a REST destination, under which field names and types."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.model import Value

FieldType = Literal["string", "int", "float", "bool", "datetime"]
JsonScalar = None | bool | int | float | str

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


class FieldMapping(BaseModel):
    """``from_property`` of the profile goes to ``to_field`` of the destination as ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_property: str = Field(min_length=1)
    to_field: str = Field(min_length=1)
    type: FieldType = "string"


class MappingError(ValueError):
    """A property value cannot be converted to its destination type."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"property {name}: {detail}")
        self.property = name


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


class Mapper:
    """Turns profile properties into a destination body; unmapped properties are never sent."""

    def __init__(self, fields: Sequence[FieldMapping], id_field: str) -> None:
        self.fields = tuple(fields)
        self.id_field = id_field
        self.properties = frozenset(item.from_property for item in self.fields)
        self._by_property: dict[str, list[FieldMapping]] = {}
        for item in self.fields:
            self._by_property.setdefault(item.from_property, []).append(item)

    @staticmethod
    def check(fields: Sequence[FieldMapping], id_field: str) -> None:
        """Raise ValueError when two mappings write one field or a mapping writes the id."""
        targets = [item.to_field for item in fields]
        duplicates = sorted({name for name in targets if targets.count(name) > 1})
        if duplicates:
            raise ValueError(f"mapping writes these fields twice: {duplicates}")
        if id_field in targets:
            raise ValueError(f"mapping must not write id_field {id_field!r}")

    def select(self, properties: Mapping[str, object]) -> list[str]:
        """The mapped names among ``properties``."""
        return [name for name in properties if name in self.properties]

    def fields_of(self, properties: Mapping[str, Value]) -> dict[str, JsonScalar]:
        """Destination fields for the mapped ``properties``; raises MappingError."""
        body: dict[str, JsonScalar] = {}
        for name, value in properties.items():
            for item in self._by_property.get(name, ()):
                try:
                    body[item.to_field] = convert(value, item.type)
                except ValueError as exc:
                    raise MappingError(name, str(exc)) from exc
        return body

    def field_value(self, to_field: str, properties: Mapping[str, Value]) -> JsonScalar:
        """The converted value of destination field ``to_field``, ``None`` when unknown."""
        for item in self.fields:
            if item.to_field == to_field and item.from_property in properties:
                return convert(properties[item.from_property], item.type)
        return None
