"""The crate's upsert reader (``UpsertCodec.decode`` with the native kernel) against the Python
reference: for generated upserts in both forms, damaged and garbage bytes and hand-written
JSON, the same upsert with the same types, or the same error."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import to_parsing_canonical_form
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streams._native import UpsertDecoder
from streams.codecs.avro import SchemaRegistry, load_registry, load_schema_file, schemas_dir
from streams.codecs.upserts import UPSERT_SCHEMA, UpsertCodec, native_decoder
from streams.errors import ConfigError, InvalidEventError
from streams.model import Op, PropertyState, Upsert

NATIVE = UpsertCodec("avro")
REFERENCE = UpsertCodec("avro", kernel="python")
DECODER = native_decoder(load_registry(UPSERT_SCHEMA).current)
WRITERS = {"avro": UpsertCodec("avro"), "json": UpsertCodec("json")}

I64 = st.integers(-(2**63), 2**63 - 1)
WIDE = st.integers(2**63, 2**64 + 5) | st.integers(-(2**64), -(2**63) - 1)
FLOATS = st.floats() | st.sampled_from(
    [-0.0, 0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 0.1]
)
TEXTS = st.text(max_size=12) | st.sampled_from(["", "é", "😀", "\x00", '"\\', "\u2028"])
VALUES = st.one_of(st.none(), st.booleans(), I64, WIDE, FLOATS, TEXTS)
STAMPS = st.one_of(I64, st.just(-1), WIDE)


@st.composite
def upserts(draw: st.DrawFn) -> Upsert:
    source = draw(TEXTS)
    op = draw(st.sampled_from(Op))
    names = draw(st.lists(TEXTS, unique=True, max_size=6))
    return Upsert(
        customer_id=draw(TEXTS),
        op=op,
        properties={name: PropertyState(draw(VALUES), draw(STAMPS), source) for name in names},
        deleted_at=draw(st.none() | STAMPS),
        source=source,
        event_id=draw(st.none() | TEXTS),
        processed_at=draw(STAMPS),
    )


def _exact(value: Any) -> Any:
    """A value with its exact type; floats by their bits (-0.0, NaN)."""
    if type(value) is float:
        return ("float", struct.pack("<d", value))
    if isinstance(value, tuple):
        return (type(value), *map(_exact, value))
    if isinstance(value, dict):
        return ("dict", [(_exact(k), _exact(v)) for k, v in value.items()])
    if isinstance(value, Op):
        return ("op", id(value))
    return (type(value), value)


def outcome(codec: UpsertCodec, data: bytes) -> Any:
    try:
        upsert = codec.decode(data)
    except InvalidEventError as exc:
        return ("error", exc.reason, exc.detail)
    return ("upsert", _exact(upsert))


def assert_same(data: bytes) -> None:
    assert outcome(NATIVE, data) == outcome(REFERENCE, data)


def _encoded(fmt: str, upsert: Upsert) -> bytes | None:
    try:
        return WRITERS[fmt].encode(upsert)
    except (InvalidEventError, ValueError):  # beyond what the format can carry
        return None


def _in_int64(upsert: Upsert) -> bool:
    stamps = [upsert.processed_at, upsert.deleted_at or 0]
    stamps += [s.last_update for s in upsert.properties.values()]
    ints = [s.value for s in upsert.properties.values() if type(s.value) is int]
    return all(-(2**63) <= i < 2**63 for i in stamps + ints)


@hypothesis_settings(max_examples=600, deadline=None)
@given(upsert=upserts(), fmt=st.sampled_from(["avro", "json"]))
def test_encoded_upserts_decode_as_the_reference_decodes_them(fmt: str, upsert: Upsert) -> None:
    data = _encoded(fmt, upsert)
    if data is None:
        return
    assert_same(data)
    if _in_int64(upsert):  # the common case is the crate's own, not left to the reference
        assert DECODER.decode(data) is not None


def test_the_native_upsert_is_the_reference_upsert() -> None:
    source = "crm"
    upsert = Upsert(
        "c-1",
        Op.DELETE,
        {
            "a": PropertyState(None, -1, source),
            "b": PropertyState(True, 2**63 - 1, source),
            "c": PropertyState(-(2**63), 3, source),
            "d": PropertyState(-0.0, 4, source),
            "e": PropertyState("\U0001f600\x00", 5, source),
        },
        17,
        source,
        None,
        1700000000000,
    )
    for fmt in ("avro", "json"):
        decoded = DECODER.decode(WRITERS[fmt].encode(upsert))
        assert decoded is not None
        assert _exact(decoded) == _exact(upsert)
        assert decoded.op is Op.DELETE
        assert all(state.source is decoded.source for state in decoded.properties.values())


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = _encoded(draw(st.sampled_from(["avro", "json"])), draw(upserts())) or b"{}"
    kind = draw(st.integers(0, 3))
    at = draw(st.integers(0, len(data)))
    if kind == 0:
        return data[:at]
    if kind == 1:
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at:]
    if kind == 2 and at < len(data):
        flipped = data[at] ^ draw(st.integers(1, 255))
        return data[:at] + bytes([flipped]) + data[at + 1 :]
    return data + draw(st.binary(min_size=1, max_size=3))


@hypothesis_settings(max_examples=800, deadline=None)
@given(
    data=damaged()
    | st.binary(max_size=40)
    | st.binary(max_size=60).map(lambda body: NATIVE._header + body)
)
def test_damaged_and_garbage_bytes(data: bytes) -> None:
    assert_same(data)


# ----- hand-written JSON: wrong types, repeated keys, numbers, escapes, extra fields -----

NUMBER_TOKEN = "$serde_json::private::Number"  # how serde_json hands a number's text over
# Literals orjson reads as an int, a big int, a float, or refuses.
_NUMBER_LITERALS = """0 -0 1 -1 1.0 -0.0 1e2 1E2 1e-2 1.5e+3 0.1e-400 1e400 -1e400
    9223372036854775807 -9223372036854775808 9223372036854775808 -9223372036854775809
    18446744073709551615 18446744073709551616 123456789012345678901234567890
    0.30000000000000004 2.2250738585072011e-308 4.9406564584124654e-324 1.7976931348623157e308
    179769313486231580793728971405301e276 01 1. .5 +1 0x10 NaN Infinity - 1e 1.0.0"""
NUMBERS = st.sampled_from(_NUMBER_LITERALS.split()) | st.builds(str, I64)
ESCAPED_TEXT = st.text(st.characters(codec=None), max_size=8)
ATOMS = st.one_of(
    NUMBERS,
    st.sampled_from(["null", "true", "false", "[]", "[1]", "{}", '"UPSERT"', '"DELETE"']),
    st.sampled_from(['"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"\\u00e9"', '"a\\/b"']),
    st.sampled_from(['"1.5"', "1"]).map(lambda number: f'{{"{NUMBER_TOKEN}":{number}}}'),
    ESCAPED_TEXT.map(lambda text: json.dumps(text, ensure_ascii=True)),
    ESCAPED_TEXT.map(lambda text: json.dumps(text, ensure_ascii=False)),
)
# Decimal literals of up to 40 digits: both readers must round them alike.
FLOAT_LITERALS = st.builds(
    "{}{}.{}e{}".format,
    st.sampled_from(["", "-"]),
    st.from_regex(r"\A[1-9][0-9]{0,20}\Z"),
    st.from_regex(r"\A[0-9]{1,20}\Z"),
    st.integers(-345, 330),
)
GOOD_VALUES = st.one_of(
    st.builds(str, I64),
    FLOAT_LITERALS,
    st.sampled_from(["null", "true", "false", "-0.0", "1.5", "1e300", "2.5E-310"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    ESCAPED_TEXT.map(lambda text: json.dumps(text, ensure_ascii=True)),
    TEXTS.map(lambda text: json.dumps(text, ensure_ascii=False)),
)
FIELD_NAMES = st.sampled_from(
    ["customer_id", "op", "properties", "deleted_at", "source", "event_id", "processed_at"]
)


def _mostly(good: st.SearchStrategy[str], bad: st.SearchStrategy[str], draw: st.DrawFn) -> str:
    return draw(good if draw(st.integers(0, 9)) else bad)


def _escape_some(key: str, draw: st.DrawFn) -> str:
    if key and draw(st.integers(0, 9)) == 0:
        return '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
    return json.dumps(key)


def _object(pairs: list[tuple[str, str]], draw: st.DrawFn) -> str:
    space = draw(st.sampled_from(["", " ", "\n\t"]))
    items = [f"{_escape_some(key, draw)}{space}:{value}" for key, value in pairs]
    return "{" + space + ("," + space).join(items) + space + "}"


@st.composite
def state_texts(draw: st.DrawFn) -> str:
    pairs = [
        ("value", _mostly(GOOD_VALUES, ATOMS, draw)),
        ("last_update", _mostly(st.builds(str, I64), NUMBERS, draw)),
    ]
    if draw(st.integers(0, 9)) == 0:
        pairs.append((draw(st.sampled_from(["value", "last_update", "other"])), draw(ATOMS)))
    if draw(st.integers(0, 9)) == 0:
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    if draw(st.booleans()):
        pairs.reverse()
    return _object(pairs, draw) if draw(st.integers(0, 15)) else draw(ATOMS)


@st.composite
def json_upserts(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(TEXTS, max_size=4))  # repeats allowed
    properties = _object([(name, draw(state_texts())) for name in names], draw)
    fields = {
        "customer_id": json.dumps(draw(TEXTS)),
        "op": _mostly(st.sampled_from(['"UPSERT"', '"DELETE"']), st.just('"MERGE"') | ATOMS, draw),
        "properties": properties,
        "deleted_at": _mostly(st.just("null") | st.builds(str, I64), NUMBERS, draw),
        "source": json.dumps(draw(TEXTS)),
        "event_id": draw(st.sampled_from(["null", '"e-1"'])),
        "processed_at": _mostly(st.builds(str, I64), NUMBERS, draw),
    }
    pairs = list(fields.items())
    for _ in range(max(0, draw(st.integers(-2, 2)))):
        change = draw(st.integers(0, 3))
        if change == 0 and pairs:  # a missing field
            pairs.pop(draw(st.integers(0, len(pairs) - 1)))
        elif change == 1:  # a field of another type
            pairs[draw(st.integers(0, len(pairs) - 1))] = (draw(FIELD_NAMES), draw(ATOMS))
        elif change == 2:  # a repeated field, or an extra one
            pairs.append((draw(FIELD_NAMES | st.just("extra")), draw(ATOMS)))
        else:
            pairs = draw(st.permutations(pairs))
    before = draw(st.sampled_from(["", " ", "\n"]))
    return (before + _object(pairs, draw) + _mostly(st.just(""), st.just(" x"), draw)).encode()


@hypothesis_settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=json_upserts())
def test_hand_written_json(data: bytes) -> None:
    assert_same(data)


@pytest.mark.parametrize(
    "text",
    [
        b'{"customer_id":"c","op":"UPSERT","properties":{},"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":1,"last_update":1},'
        b'"a":{"value":2.5,"last_update":2}},"source":"s","processed_at":1}',
        b'{"customer_id":"c","customer_id":"d","op":"UPSERT","properties":{},"source":"s",'
        b'"processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":18446744073709551615,'
        b'"last_update":1}},"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":1e400,"last_update":1}},'
        b'"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":-0,"last_update":1},'
        b'"b":{"value":-0.0,"last_update":-0},"c":{"value":-1E-0,"last_update":1}},'
        b'"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":18446744073709551616,'
        b'"last_update":1},"b":{"value":-9223372036854775809,"last_update":1}},"source":"s",'
        b'"processed_at":1}',
        b'{"customer_id":"\\ud83d\\ude00","op":"DELETE","properties":{},"deleted_at":-0,'
        b'"source":"s","event_id":"\\u00e9","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":{"$serde_json::private::'
        b'Numbe\\u0072":"1.5"},"last_update":1}},"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":{"$serde_json::private::'
        b'Number":"1.5"},"last_update":1}},"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":{"$serde_json::private::'
        b'Number":"1.5","b":1},"last_update":1}},"source":"s","processed_at":1}',
        b'{"customer_id":"c","op":"UPSERT","properties":{},"source":"s","processed_at":1.0}',
        b'{"customer_id":"c","op":"UPSERT","properties":{},"source":"s","processed_at":true}',
        b'\xef\xbb\xbf{"customer_id":"c","op":"UPSERT","properties":{},"source":"s",'
        b'"processed_at":1}',
    ],
)
def test_json_corners(text: bytes) -> None:
    assert_same(text)


def test_repeated_and_wide_json_is_left_to_the_reference() -> None:
    repeated = b'{"customer_id":"c","op":"UPSERT","properties":{"a":{"value":1,"last_update":1},'
    repeated += b'"a":{"value":2,"last_update":2}},"source":"s","processed_at":1}'
    wide = orjson.dumps(
        {"customer_id": "c", "op": "UPSERT", "properties": {}, "source": "s", "processed_at": 2**63}
    )
    for data in (repeated, wide):
        assert DECODER.decode(data) is None
        assert NATIVE.decode(data) == REFERENCE.decode(data)
    assert list(NATIVE.decode(repeated).properties.values()) == [PropertyState(2, 2, "s")]


# ----- schema versions -----

CURRENT = schemas_dir() / f"{UPSERT_SCHEMA}.avsc"


def _older_schema(tmp_path: Path) -> Path:
    """The current schema as it might have been before event_id."""
    schema = json.loads(CURRENT.read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "event_id"]
    path = tmp_path / "profile_upsert.v0.avsc"
    path.write_text(json.dumps(schema))
    return path


def test_an_older_schema_version_is_left_to_the_reference(tmp_path: Path) -> None:
    older = load_schema_file(_older_schema(tmp_path))
    registry = SchemaRegistry(load_schema_file(CURRENT), [older])
    native = UpsertCodec("avro", registry)
    reference = UpsertCodec("avro", registry, kernel="python")
    record = {
        "customer_id": "c-1",
        "op": "UPSERT",
        "properties": {"a": {"value": 1.5, "last_update": 7}, "b": {"value": "", "last_update": 8}},
        "deleted_at": None,
        "source": "crm",
        "processed_at": 9,
    }
    out = io.BytesIO()
    out.write(older.header)
    schemaless_writer(out, parse_schema(json.loads(older.path.read_text())), record)
    data = out.getvalue()
    assert native_decoder(registry.current).decode(data) is None
    expected = Upsert(
        "c-1",
        Op.UPSERT,
        {"a": PropertyState(1.5, 7, "crm"), "b": PropertyState("", 8, "crm")},
        None,
        "crm",
        None,
        9,
    )
    assert native.decode(data) == reference.decode(data) == expected


def test_a_current_schema_the_crate_does_not_know_is_left_to_the_reference() -> None:
    current = load_registry(UPSERT_SCHEMA).current
    canonical = to_parsing_canonical_form(current.parsed)
    decoder = UpsertDecoder(
        schema=(current.fingerprint, canonical.replace('"UPSERT"', '"MERGE","UPSERT"')),
        upsert=Upsert,
        property_state=PropertyState,
        ops=(Op.UPSERT, Op.DELETE),
    )
    upsert = Upsert("c", Op.UPSERT, {"a": PropertyState(1, 2, "s")}, None, "s", None, 3)
    assert decoder.decode(WRITERS["avro"].encode(upsert)) is None
    assert decoder.decode(WRITERS["json"].encode(upsert)) == upsert


def test_the_decoder_wants_record_classes() -> None:
    current = load_registry(UPSERT_SCHEMA).current
    with pytest.raises(TypeError, match="named tuple of 7 fields"):
        UpsertDecoder(
            schema=(current.fingerprint, ""), upsert=dict, property_state=PropertyState, ops=(1, 2)
        )


def test_an_unknown_kernel_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="kernel"):
        UpsertCodec("avro", kernel="rust")  # type: ignore[arg-type]


def test_many_distinct_names() -> None:
    # More names than the decoder keeps as Python strings: the rest are made afresh.
    upsert = Upsert(
        "c",
        Op.UPSERT,
        {f"p{i}": PropertyState(i, i // 3, "s") for i in range(5000)},
        None,
        "s",
        None,
        1,
    )
    for fmt in ("avro", "json"):
        data = WRITERS[fmt].encode(upsert)
        for _ in range(2):
            decoded = DECODER.decode(data)
            assert decoded is not None
            assert _exact(decoded) == _exact(upsert)
