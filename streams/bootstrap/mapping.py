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
``csv_delimiter`` and ``encoding`` (README.md's "Snapshot bootstrap" lists them all). An unknown
option is refused, with the known one it resembles.
"""

from __future__ import annotations

import codecs
import difflib
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

    @field_validator("csv_delimiter")
    @classmethod
    def _usable_delimiter(cls, value: str) -> str:
        if value in ('"', "\r", "\n"):
            raise ValueError('one character other than a quote or a line end, such as ";" or "\\t"')
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            text = getattr(codecs.lookup(value), "_is_text_encoding", True)
        except LookupError:
            text = False
        if not text:
            raise ValueError(
                'not a text encoding Python knows; for example "utf-8", "windows-1250", '
                '"windows-1252", "latin-1" or "utf-16"'
            )
        return value

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


def parse_mapping(data: Any, name: str = "mapping") -> BootstrapMapping:
    """``name``: how the error names the mapping (its file, when there is one)."""
    try:
        return BootstrapMapping.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, "mapping")
        raise ConfigError(f"invalid {name}: {problems}{_unknown_options(exc)}") from exc


def _unknown_options(exc: ValidationError) -> str:
    """For each unknown top-level option, the known one it resembles (a typo) or the list."""
    known = sorted(BootstrapMapping.model_fields)
    hints = []
    for error in exc.errors(include_input=False, include_url=False):
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            name = str(error["loc"][0])
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(
                f"{name!r} is not an option: did you mean {close[0]!r}?"
                if close
                else f"{name!r} is not an option; the options are {', '.join(known)}"
            )
    return "".join(f"; {hint}" for hint in hints)


def load_mapping(path: Path) -> BootstrapMapping:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the mapping {path}: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"mapping {path} is not JSON: {exc}") from exc
    return parse_mapping(data, f"mapping {path}")
