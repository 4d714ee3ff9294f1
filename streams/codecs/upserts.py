"""Output upserts (``profile-upserts``) as Avro single-object messages or JSON.

Both forms carry the same record; :meth:`UpsertCodec.decode` detects the form from the first
bytes, so readers keep working while a deployment switches ``output_format``. With the native
kernel (the default) the crate's ``UpsertDecoder`` reads the common case (the current schema, or
plain JSON) and leaves anything else to the Python reference here, errors included.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastavro.schema import to_parsing_canonical_form

from streams._native import UpsertDecoder
from streams.codecs.avro import SOE_MARKER, SchemaRegistry, SchemaVersion, load_registry
from streams.codecs.upsert_writer import write_upsert_body
from streams.errors import ConfigError, InvalidEventError
from streams.model import Op, PropertyState, Upsert

UPSERT_SCHEMA = "profile_upsert"
_WIRE_OP = {Op.UPSERT: "UPSERT", Op.DELETE: "DELETE"}  # the Avro enum is upper case
_MODEL_OP = {wire: op for op, wire in _WIRE_OP.items()}
_SCALARS = (type(None), bool, int, float, str)


class UpsertCodec:
    """Encode upserts in the configured format; decode either format."""

    __slots__ = ("_avro", "_header", "_native", "_schemas")

    def __init__(
        self,
        fmt: Literal["avro", "json"],
        schemas: SchemaRegistry | None = None,
        *,
        kernel: Literal["native", "python"] = "native",
    ) -> None:
        if fmt not in ("avro", "json"):
            raise ConfigError(f'upsert format must be "avro" or "json", got {fmt!r}')
        if kernel not in ("native", "python"):
            raise ConfigError(f'kernel must be "native" or "python", got {kernel!r}')
        self._avro = fmt == "avro"
        # Loaded even for JSON output: decode must still read Avro written before a switch.
        self._schemas = schemas if schemas is not None else load_registry(UPSERT_SCHEMA)
        current = self._schemas.current
        self._header = current.header
        self._native = native_decoder(current) if kernel == "native" else None

    @property
    def fmt(self) -> Literal["avro", "json"]:
        return "avro" if self._avro else "json"

    @property
    def native(self) -> UpsertDecoder[Upsert] | None:
        """The crate's reader behind ``decode``; None on the reference kernel."""
        return self._native

    def encode(self, upsert: Upsert) -> bytes:
        """The wire form; ``PropertyState.source`` is not carried (it is the upsert's source)."""
        if self._avro:
            out = bytearray(self._header)
            try:
                write_upsert_body(upsert, out)
            except (TypeError, OverflowError) as exc:
                raise InvalidEventError("bad_type", f"cannot encode upsert: {exc}") from exc
            return bytes(out)
        record = upsert_record(upsert)
        try:
            return orjson.dumps(record)
        except orjson.JSONEncodeError as exc:
            raise InvalidEventError("bad_type", f"cannot encode upsert as JSON: {exc}") from exc

    def decode(self, data: bytes) -> Upsert:
        """Read an upsert in either form; a malformed one is ``InvalidEventError("bad_upsert")``."""
        if self._native is not None:
            upsert = self._native.decode(data)
            if upsert is not None:
                return upsert
        if data.startswith(SOE_MARKER):
            record: Any = self._schemas.decode(data)
        else:
            try:
                record = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise InvalidEventError("bad_json", f"{exc.msg} at char {exc.pos}") from exc
        try:
            return _to_upsert(record)
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidEventError(
                "bad_upsert", f"malformed upsert: {type(exc).__name__}"
            ) from exc


def native_decoder(current: SchemaVersion) -> UpsertDecoder[Upsert]:
    """The crate's reader of upserts in ``current`` (Avro, if the crate knows that schema) and
    JSON; ``decode`` is None for what it leaves to the reference."""
    return UpsertDecoder(
        schema=(current.fingerprint, to_parsing_canonical_form(current.parsed)),
        upsert=Upsert,
        property_state=PropertyState,
        ops=(Op.UPSERT, Op.DELETE),
    )


def upsert_record(upsert: Upsert) -> dict[str, Any]:
    """The wire record of an upsert, as the schema names its fields."""
    return {
        "customer_id": upsert.customer_id,
        "op": _WIRE_OP[upsert.op],
        "properties": {
            name: {"value": state.value, "last_update": state.last_update}
            for name, state in upsert.properties.items()
        },
        "deleted_at": upsert.deleted_at,
        "source": upsert.source,
        "event_id": upsert.event_id,
        "processed_at": upsert.processed_at,
    }


def _to_upsert(record: Any) -> Upsert:
    source = _typed(record["source"], str, "source")
    properties = {
        _typed(name, str, "property name"): PropertyState(
            value=_typed(state["value"], _SCALARS, "value"),
            last_update=_typed(state["last_update"], int, "last_update"),
            source=source,
        )
        for name, state in _typed(record["properties"], dict, "properties").items()
    }
    op = _MODEL_OP.get(record["op"])
    if op is None:
        raise InvalidEventError("bad_upsert", 'op must be "UPSERT" or "DELETE"')
    deleted_at = record.get("deleted_at")
    event_id = record.get("event_id")
    return Upsert(
        customer_id=_typed(record["customer_id"], str, "customer_id"),
        op=op,
        properties=properties,
        deleted_at=None if deleted_at is None else _typed(deleted_at, int, "deleted_at"),
        source=source,
        event_id=None if event_id is None else _typed(event_id, str, "event_id"),
        processed_at=_typed(record["processed_at"], int, "processed_at"),
    )


def _typed(value: Any, kinds: type | tuple[type, ...], what: str) -> Any:
    # Exact types: True is not a timestamp, and the Avro reader never yields subclasses.
    if type(value) in (kinds if isinstance(kinds, tuple) else (kinds,)):
        return value
    raise InvalidEventError("bad_upsert", f"{what} has type {type(value).__name__}")
