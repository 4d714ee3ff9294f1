"""Change events to and from the input topic's bytes, by one rule set: the processor's.

:class:`EventDecoder` turns an input record (JSON or Avro single-object) into a validated
:class:`ChangeEvent`. This is the processor's hot path: one ``orjson.loads``, exact ``type() is``
checks, and the decoded ``properties`` dict is handed on as is. Every rejection is an
:class:`InvalidEventError` whose ``reason`` is a short code for the DLQ; details never echo
payloads or full email addresses.

Every ingestion path (HTTP, AMQP, change logs, webhooks, the bootstrap's odd rows) builds its
events with :func:`change_event` (a native event in a tracking request comes as it was written)
and writes them with :func:`encode_event`; the services then
check each one with :meth:`EventDecoder.encode`, so what they accept is never dead-lettered later
and a customer id, a timestamp or a property is judged alike whichever way it arrives. The
bootstrap's regular rows are rendered from a template (:mod:`streams.bootstrap.events`) that
writes the keys, in the order, and the values :func:`encode_event` writes, with the decoder's
limits checked per column.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from streams.codecs.avro import SOE_MARKER, SchemaRegistry, load_registry
from streams.codecs.integers import (
    I64_MAX,
    I64_MIN,
    dumps_event,
    out_of_range,
    reject_wide_integers,
)
from streams.codecs.timestamps import MAX_EPOCH_MS, to_epoch_ms
from streams.errors import ConfigError, InvalidEventError
from streams.logs import clip_name
from streams.model import UNKNOWN_TS, ChangeEvent, Op, Value

if TYPE_CHECKING:
    from streams.settings import Settings

CHANGE_SCHEMA = "profile_change"
FIELDS = frozenset(
    {
        "customer_id",
        "source",
        "event_id",
        "op",
        "update_timestamp",
        "properties",
        "property_timestamps",
    }
)
_OPS = {"upsert": Op.UPSERT, "delete": Op.DELETE}
_DELETE = Op.DELETE  # enum attribute access costs ~0.1 us per event; a global is cheaper
_SOE_FIRST = SOE_MARKER[0]  # no JSON text starts with byte C3
_MAX_SECONDS = MAX_EPOCH_MS // 1000
_F64_MAX = 1.7976931348623157e308
# A float this large may be an integer literal orjson could not hold (see codecs.integers).
_WIDE_FLOAT = float(2**63)
_MISSING: Any = object()
_NO_PROPERTIES: Mapping[str, Value] = MappingProxyType({})

Timestamp = int | float | str
"""An update time as events carry it: UNIX seconds or ISO-8601 text (see codecs.timestamps)."""


class EncodedEvent(NamedTuple):
    """One checked event: the input topic's key and value, and what the processor reads."""

    key: bytes
    value: bytes
    event: ChangeEvent


def change_event(
    customer_id: str,
    source: str,
    update_timestamp: Timestamp,
    properties: Mapping[str, Value] = _NO_PROPERTIES,
    *,
    property_timestamps: Mapping[str, Timestamp] | None = None,
    event_id: str | None = None,
    op: Op = Op.UPSERT,
) -> dict[str, Any]:
    """One change event in the input topic's JSON shape, its keys in one order (the bootstrap's
    template writes the same). An upsert always carries ``properties`` (as given: a wrong type
    from a request is the decoder's to refuse); a delete only when some are given (the decoder
    refuses that). Nothing is checked here: :meth:`EventDecoder.encode` does."""
    event: dict[str, Any] = {"customer_id": customer_id, "source": source}
    if event_id is not None:
        event["event_id"] = event_id
    if op is _DELETE:
        event["op"] = _DELETE.value
    event["update_timestamp"] = update_timestamp
    if op is not _DELETE:
        event["properties"] = {} if properties is _NO_PROPERTIES else properties
    elif properties:
        event["properties"] = properties
    if property_timestamps:
        event["property_timestamps"] = property_timestamps
    return event


def encode_event(event: Mapping[str, Any]) -> tuple[bytes | None, bytes]:
    """``(key, value)`` of a change event (a dict of :func:`change_event`'s shape): the customer
    id, UTF-8 (None unless a string: the decoder then says what is wrong), and the event as JSON.
    Raises :class:`InvalidEventError` for what JSON cannot hold (lone surrogates, an integer
    out of range, a value that is no JSON type)."""
    try:
        value = dumps_event(event)
        customer_id = event.get("customer_id")
        key = customer_id.encode() if type(customer_id) is str else None
    except (UnicodeEncodeError, orjson.JSONEncodeError) as exc:
        raise InvalidEventError(
            "bad_type", f"not encodable as UTF-8 JSON ({type(exc).__name__})"
        ) from exc
    return key, value


class EventDecoder:
    """Decode and validate one input record; reusable and stateless between calls."""

    __slots__ = ("_max_bytes", "_max_properties", "_max_skew_ms", "_schemas")

    def __init__(
        self,
        *,
        max_event_bytes: int,
        max_properties: int,
        max_clock_skew_ms: int,
        schemas: SchemaRegistry | None = None,
    ) -> None:
        if max_event_bytes < 1 or max_properties < 1 or max_clock_skew_ms < 0:
            raise ConfigError(
                "EventDecoder needs max_event_bytes >= 1, max_properties >= 1 and "
                f"max_clock_skew_ms >= 0, got {max_event_bytes}, {max_properties}, "
                f"{max_clock_skew_ms}"
            )
        self._max_bytes = max_event_bytes
        self._max_properties = max_properties
        self._max_skew_ms = max_clock_skew_ms
        # Loaded up front so a missing schemas dir fails at startup, not on the first Avro event.
        self._schemas = schemas if schemas is not None else load_registry(CHANGE_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> EventDecoder:
        return cls(
            max_event_bytes=settings.max_event_bytes,
            max_properties=settings.max_properties,
            max_clock_skew_ms=round(settings.max_clock_skew_seconds * 1000),
        )

    def encode(self, event: Mapping[str, Any], now_ms: int) -> EncodedEvent:
        """``event`` (see :func:`change_event`) encoded and checked as :meth:`decode` checks it
        when the processor reads it; an event without an update time takes ``now_ms``, as its
        record's CreateTime will stand in for it. Raises :class:`InvalidEventError`."""
        key, value = encode_event(event)
        decoded = self.decode(key, value, now_ms, now_ms)
        assert key is not None  # decode() refuses an event without a string customer_id
        return EncodedEvent(key, value, decoded)

    def decode(
        self, key: bytes | None, value: bytes | None, record_timestamp_ms: int, now_ms: int
    ) -> ChangeEvent:
        """Validate one record; ``record_timestamp_ms`` stands in for a missing update time."""
        if not value:
            raise InvalidEventError("empty", "record has no value")
        if len(value) > self._max_bytes:
            raise InvalidEventError("too_large", f"{len(value)} bytes > {self._max_bytes}")
        if value[0] == _SOE_FIRST:
            # Avro longs are 64-bit: no integer out of range gets this far.
            doc = self._schemas.decode(value)
            return self._validate(doc, None, key, record_timestamp_ms, now_ms)
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            # exc.msg names the problem without quoting the payload.
            raise InvalidEventError("bad_json", f"{exc.msg} at char {exc.pos}") from exc
        try:
            return self._validate(doc, value, key, record_timestamp_ms, now_ms)
        except InvalidEventError:
            # An integer out of range is the reason, wherever it sits: orjson read it as a
            # float (or as an int beyond int64) that failed some other check first.
            reject_wide_integers(value)
            raise

    def _validate(
        self,
        doc: Any,
        raw: bytes | None,
        key: bytes | None,
        record_timestamp_ms: int,
        now_ms: int,
    ) -> ChangeEvent:
        """``raw``: the JSON text ``doc`` was read from (None for Avro)."""
        if type(doc) is not dict:
            raise InvalidEventError("not_an_object", f"top level is {type(doc).__name__}")
        if not FIELDS.issuperset(doc):
            unknown = ", ".join(sorted(clip_name(str(name)) for name in doc.keys() - FIELDS))
            raise InvalidEventError("unknown_field", f"unknown field(s): {unknown}")

        customer_id = doc.get("customer_id")
        if type(customer_id) is not str:
            if customer_id is None:
                raise InvalidEventError("missing_customer_id", "customer_id is required")
            raise InvalidEventError("bad_type", "customer_id must be a string")
        if not customer_id:
            raise InvalidEventError("missing_customer_id", "customer_id is empty")
        if customer_id[0] == "\x00":
            # NUL-prefixed keys are reserved for the state store's own metadata.
            raise InvalidEventError("bad_type", "customer_id must not start with NUL")
        # A missing key is fine; a present one must route to this customer's partition.
        if key is not None and key != customer_id.encode():
            raise InvalidEventError("key_mismatch", "Kafka key differs from customer_id")
        source = doc.get("source")
        if type(source) is not str or not source:
            raise InvalidEventError("missing_source", "source must be a non-empty string")
        event_id = doc.get("event_id")
        if event_id is not None and type(event_id) is not str:
            raise InvalidEventError("bad_type", "event_id must be a string")
        raw_op = doc.get("op", "upsert")
        op = _OPS.get(raw_op) if type(raw_op) is str else None
        if op is None:
            raise InvalidEventError("bad_op", 'op must be "upsert" or "delete"')

        properties = doc.get("properties", _MISSING)
        if properties is _MISSING:
            properties = {}
        elif type(properties) is not dict:
            raise InvalidEventError("bad_type", "properties must be an object")
        elif properties:
            if len(properties) > self._max_properties:
                raise InvalidEventError(
                    "too_many_properties", f"{len(properties)} properties > {self._max_properties}"
                )
            _check_values(properties, raw)

        raw_ts = doc.get("update_timestamp")
        if raw_ts is None:
            timestamp = record_timestamp_ms if record_timestamp_ms >= 0 else UNKNOWN_TS
        elif type(raw_ts) is float and 0.0 <= raw_ts <= _MAX_SECONDS:
            timestamp = round(raw_ts * 1000)  # inlined common case of to_epoch_ms
        else:
            timestamp = to_epoch_ms(raw_ts, "update_timestamp")
        limit = now_ms + self._max_skew_ms
        if timestamp > limit:
            raise InvalidEventError("future_timestamp", f"update time {timestamp} ms > now + skew")
        if op is _DELETE:
            if properties:
                raise InvalidEventError(
                    "bad_op", "a delete removes the whole profile: no properties"
                )
            if timestamp == UNKNOWN_TS:
                raise InvalidEventError("bad_timestamp", "a delete needs a known update time")

        raw_pts = doc.get("property_timestamps")
        if raw_pts:
            property_timestamps = _property_timestamps(raw_pts, properties, limit)
        elif raw_pts is None or type(raw_pts) is dict:
            property_timestamps = {}
        else:
            raise InvalidEventError("bad_type", "property_timestamps must be an object")
        return ChangeEvent(
            customer_id, source, op, timestamp, properties, property_timestamps, event_id
        )


def _check_values(properties: dict[str, Any], raw: bytes | None) -> None:
    # JSON object and Avro map keys are always str, so only the empty name needs a check.
    if "" in properties:
        raise InvalidEventError("bad_type", "property names must not be empty")
    for name, value in properties.items():
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is int:
            if I64_MIN <= value <= I64_MAX:
                continue
            raise out_of_range(f"property {clip_name(name)!r}")
        if kind is float:
            if -_WIDE_FLOAT < value < _WIDE_FLOAT:
                continue
            if -_F64_MAX <= value <= _F64_MAX:  # False for NaN and +-inf
                if raw is not None:  # 1e30 is a float; 10**30 written out is not
                    reject_wide_integers(raw)
                continue
            raise InvalidEventError("bad_type", f"property {clip_name(name)!r}: non-finite float")
        raise InvalidEventError(
            "bad_type",
            f"property {clip_name(name)!r}: {kind.__name__} is not null/bool/number/string",
        )


def _property_timestamps(raw: object, properties: dict[str, Any], limit: int) -> dict[str, int]:
    if type(raw) is not dict:
        raise InvalidEventError("bad_type", "property_timestamps must be an object")
    result: dict[str, int] = {}
    for name, value in raw.items():
        if name not in properties:
            raise InvalidEventError(
                "bad_timestamp", f"property_timestamps names {clip_name(name)!r}, not in properties"
            )
        ms = to_epoch_ms(value, f"property_timestamps.{clip_name(name)}")
        if ms > limit:
            raise InvalidEventError(
                "future_timestamp", f"{clip_name(name)!r} time {ms} ms > now + skew"
            )
        result[name] = ms
    return result


def encode_change_event_avro(event: Mapping[str, object]) -> bytes:
    """A change event (the JSON shape) in Avro single-object encoding with the current schema."""
    return load_registry(CHANGE_SCHEMA).encode(event)


def decode_change_event_avro(data: bytes) -> dict[str, Any]:
    """The raw record of an Avro single-object change event, resolved to the current schema."""
    return load_registry(CHANGE_SCHEMA).decode(data)
