"""Any value of the product's topics as something JSON can print (``streams dlq show``,
``streams topics tail``): an Avro single-object change event or upsert, JSON, else the bytes
escaped. Reading only: nothing here validates an event."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import orjson

from streams.codecs.avro import SOE_MARKER, load_registry
from streams.codecs.events import CHANGE_SCHEMA
from streams.codecs.integers import loads_exact
from streams.codecs.upserts import UPSERT_SCHEMA
from streams.errors import InvalidEventError

Form = Literal["avro", "json", "bytes"]


class Readable(NamedTuple):
    """A value decoded for people: its ``form``, and the record (``bytes``: escaped text)."""

    form: Form
    value: Any


def escaped(data: bytes) -> str:
    """Bytes as text: UTF-8 where it is, ``\\xNN`` for the rest."""
    return data.decode("utf-8", "backslashreplace")


def decode_avro(data: bytes) -> dict[str, Any]:
    """An Avro single-object message of any record the product writes (change event or
    upsert, any known version); ``InvalidEventError`` when no known schema reads it."""
    errors: list[InvalidEventError] = []
    for stem in (CHANGE_SCHEMA, UPSERT_SCHEMA):
        try:
            return load_registry(stem).decode(data)
        except InvalidEventError as exc:
            errors.append(exc)
    # A schema that knew the fingerprint says more than one that did not.
    raise next((e for e in errors if e.reason != "unknown_schema"), errors[-1])


def readable(data: bytes) -> Readable:
    """Avro when the value starts with the single-object marker and a known schema reads it,
    JSON when it parses, else the escaped bytes."""
    if data.startswith(SOE_MARKER):
        try:
            return Readable("avro", decode_avro(data))
        except InvalidEventError:
            pass
    try:
        return Readable("json", loads_exact(data))
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return Readable("bytes", escaped(data))
