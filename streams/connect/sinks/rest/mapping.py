"""Which profile properties reach a REST destination, under which field names and types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from streams.errors import StreamsError
from streams.field_types import FieldType, JsonScalar, convert
from streams.model import Value


class FieldMapping(BaseModel):
    """``from_property`` of the profile goes to ``to_field`` of the destination as ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_property: str = Field(min_length=1)
    to_field: str = Field(min_length=1)
    type: FieldType = "string"


class MappingError(StreamsError, ValueError):
    """A property value cannot be converted to its destination type."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"property {name}: {detail}")
        self.property = name


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
