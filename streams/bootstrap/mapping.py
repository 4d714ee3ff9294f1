"""The import mapping file: Bloomreach's model (ids, properties, update_timestamp, constants).

```json
{"ids": [{"from_column": "idecko", "to_id": "registered"}],
 "properties": [{"from_column": "meno", "to_property": "first_name", "type": "string"}],
 "update_timestamp": {"from_column": "updated"},
 "constant_columns": [{"to_property": "origin", "value": "crm"}],
 "timezone": "UTC", "source": "bootstrap"}
```
Our additions: ``email_properties``, ``removal``, ``modified_at_column``, ``empty_values``
(``skip`` leaves a property alone on an empty cell, ``null`` unsets it), ``detect_duplicates``,
``csv_delimiter`` and ``encoding``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.errors import ConfigError
from streams.validation import validation_problems

PropertyType = Literal["string", "int", "float", "bool", "datetime", "email"]
Scalar = str | int | float | bool | None

_NAME = Field(min_length=1, max_length=256)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class IdMapping(_Model):
    """The column holding the customer id (Kafka key and ``customer_id``)."""

    from_column: str = _NAME
    to_id: str = "registered"


class PropertyMapping(_Model):
    from_column: str = _NAME
    to_property: str = _NAME
    type: PropertyType = "string"


class TimestampMapping(_Model):
    """UNIX seconds, ISO-8601 or a database datetime; naive values are in ``timezone``."""

    from_column: str = _NAME


class ConstantColumn(_Model):
    to_property: str = _NAME
    value: Scalar


class Removal(_Model):
    """Rows whose ``column`` holds one of ``values`` (case-insensitive) are removals."""

    column: str = _NAME
    values: list[str] = Field(min_length=1)
    as_: Literal["delete", "property"] = Field(default="delete", alias="as")
    property: str = Field(default="email_status", min_length=1)
    property_value: Scalar = "opted_out"


class BootstrapMapping(_Model):
    ids: list[IdMapping] = Field(min_length=1, max_length=1)
    properties: list[PropertyMapping] = Field(default_factory=list)
    update_timestamp: TimestampMapping | None = None
    constant_columns: list[ConstantColumn] = Field(default_factory=list)
    timezone: str = "UTC"
    source: str = Field(default="bootstrap", min_length=1, max_length=256)
    email_properties: list[str] = Field(default_factory=lambda: ["email"])
    removal: Removal | None = None
    modified_at_column: str | None = None
    empty_values: Literal["skip", "null"] = "skip"
    detect_duplicates: bool = True
    csv_delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"

    @field_validator("ids", mode="before")
    @classmethod
    def _one_id_object(cls, value: object) -> object:
        # Bloomreach writes a list; a single object is accepted too.
        return [value] if isinstance(value, dict) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _distinct_properties(self) -> BootstrapMapping:
        names = [p.to_property for p in self.properties] + [
            c.to_property for c in self.constant_columns
        ]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"properties mapped more than once: {', '.join(repeated)}")
        if not names and (self.removal is None or self.removal.as_ != "property"):
            raise ValueError("map at least one property (or use removal as a property)")
        return self

    @property
    def id_column(self) -> str:
        return self.ids[0].from_column

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def columns(self) -> list[str]:
        """Every source column the mapping reads, each once, in mapping order."""
        names = [self.id_column, *(p.from_column for p in self.properties)]
        for extra in (
            self.update_timestamp.from_column if self.update_timestamp else None,
            self.removal.column if self.removal else None,
            self.modified_at_column,
        ):
            if extra is not None:
                names.append(extra)
        return list(dict.fromkeys(names))

    def property_count(self) -> int:
        extra = 1 if self.removal is not None and self.removal.as_ == "property" else 0
        return len(self.properties) + len(self.constant_columns) + extra

    def fingerprint(self) -> str:
        """A stable hash: a resumed job must run with the mapping it started with."""
        canonical = orjson.dumps(self.model_dump(by_alias=True), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:16]


def parse_mapping(data: Any) -> BootstrapMapping:
    try:
        return BootstrapMapping.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid mapping: {validation_problems(exc, 'mapping')}") from exc


def load_mapping(path: Path) -> BootstrapMapping:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the mapping {path}: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"mapping {path} is not JSON: {exc}") from exc
    return parse_mapping(data)
