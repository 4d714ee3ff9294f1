"""A webhook payload (a profile as the origin shapes it) to one native change event.

Paths name a value inside the payload: a JSON Pointer (``/contact/emails/0``, RFC 6901) or a
dotted path (``contact.emails.0``). A path the payload lacks leaves the property out (the
origin did not say anything about it); an explicit ``null`` unsets it. Types are converted
by ``streams.field_types``, as in the REST sink, so a webhook and a REST destination agree on
what ``bool`` or ``datetime`` accept. Errors carry a short reason code and never echo a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streams.codecs.events import change_event
from streams.codecs.timestamps import to_epoch_ms
from streams.errors import InvalidEventError, StreamsError
from streams.field_types import FieldType, convert

MAX_ID_LENGTH = 256
_MISSING: Any = object()


class PayloadError(StreamsError):
    """The payload cannot become an event; ``reason`` is a short code, ``detail`` says where."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PropertyRule(BaseModel):
    """``from_path`` of the payload becomes property ``to_property`` as ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_path: str = Field(min_length=1)
    to_property: str = Field(min_length=1)
    type: FieldType = "string"
    required: bool = False


def split_path(path: str) -> tuple[str, ...]:
    """``/a/b~1c`` -> ``("a", "b/c")`` (JSON Pointer); ``a.b`` -> ``("a", "b")``."""
    if path.startswith("/"):
        return tuple(part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/"))
    return tuple(path.split("."))


def lookup(document: Any, parts: Sequence[str]) -> Any:
    """The value at ``parts``, or the ``_MISSING`` sentinel when the payload lacks it."""
    node = document
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


class PayloadMapper:
    """Built once per source from its configuration; ``event`` is pure."""

    def __init__(
        self,
        *,
        source: str,
        id_field: str,
        properties: Sequence[PropertyRule],
        timestamp_field: str | None = None,
        event_id_field: str | None = None,
    ) -> None:
        self.source = source
        self.id_field = id_field
        self._id = split_path(id_field)
        self._timestamp = split_path(timestamp_field) if timestamp_field else None
        self._timestamp_field = timestamp_field
        self._event_id = split_path(event_id_field) if event_id_field else None
        self._rules = [(rule, split_path(rule.from_path)) for rule in properties]

    def customer_id(self, payload: Any, fallback: str | None = None) -> str:
        raw = lookup(payload, self._id)
        if raw is _MISSING or raw is None:
            if fallback is not None:
                return fallback
            raise PayloadError("missing_id", f"no customer id at {self.id_field!r}")
        if type(raw) is int or (type(raw) is float and raw.is_integer()):
            raw = str(int(raw))  # 42.0 is the integer 42 in JSON (and in JSON Schema)
        if type(raw) is not str or not raw.strip():
            raise PayloadError("bad_id", f"the id at {self.id_field!r} must be a non-empty string")
        if len(raw) > MAX_ID_LENGTH:
            raise PayloadError("bad_id", f"the id is longer than {MAX_ID_LENGTH} characters")
        return raw.strip()

    def event(
        self, payload: Any, received_ms: int, *, fallback_id: str | None = None
    ) -> dict[str, Any]:
        """The native change event for one profile payload (a JSON object)."""
        if not isinstance(payload, dict):
            raise PayloadError("not_an_object", f"a profile is an object, not {_kind(payload)}")
        customer_id = self.customer_id(payload, fallback_id)
        at_ms = self._timestamp_ms(payload, received_ms)
        properties = self._properties(payload)
        event_id = None
        if self._event_id is not None:
            raw = lookup(payload, self._event_id)
            if isinstance(raw, str | int) and not isinstance(raw, bool):
                event_id = str(raw)
        return change_event(customer_id, self.source, at_ms / 1000, properties, event_id=event_id)

    def _timestamp_ms(self, payload: Any, received_ms: int) -> int:
        if self._timestamp is None:
            return received_ms
        raw = lookup(payload, self._timestamp)
        if raw is _MISSING or raw is None:
            # The sender promised one: the receive time could be later than a newer change.
            raise PayloadError("missing_timestamp", f"no update time at {self._timestamp_field!r}")
        try:
            return to_epoch_ms(raw, self._timestamp_field or "timestamp")
        except InvalidEventError as exc:
            raise PayloadError(exc.reason, exc.detail) from exc

    def _properties(self, payload: Any) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for rule, parts in self._rules:
            raw = lookup(payload, parts)
            if raw is _MISSING:
                if rule.required:
                    raise PayloadError("missing_field", f"{rule.from_path!r} is required")
                continue
            if isinstance(raw, dict | list):
                raise PayloadError("bad_type", f"{rule.from_path!r} is {_kind(raw)}, not a scalar")
            try:
                properties[rule.to_property] = convert(raw, rule.type)
            except ValueError as exc:
                raise PayloadError("bad_value", f"{rule.from_path!r}: {exc}") from exc
        return properties


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
