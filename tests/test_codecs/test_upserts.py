from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from streams.codecs.upserts import UpsertCodec
from streams.errors import ConfigError, InvalidEventError
from streams.model import Op, PropertyState, Upsert, Value

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "profile_upsert.avsc"
FORMATS: list[Literal["avro", "json"]] = ["avro", "json"]
I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    I64,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**52), max_value=2**52).map(float),  # whole floats stay double
    st.text(),
)


@st.composite
def upserts(draw: st.DrawFn) -> Upsert:
    source = draw(st.text(min_size=1, max_size=10))
    op = draw(st.sampled_from(Op))
    properties: dict[str, PropertyState] = {}
    if op is Op.UPSERT or draw(st.booleans()):  # a DELETE usually carries no properties
        names = draw(st.lists(st.text(max_size=12), unique=True, max_size=6))
        properties = {
            name: PropertyState(draw(VALUES), draw(st.just(-1) | I64), source) for name in names
        }
    return Upsert(
        customer_id=draw(st.text(min_size=1)),
        op=op,
        properties=properties,
        deleted_at=draw(I64) if op is Op.DELETE else draw(st.none() | I64),
        source=source,
        event_id=draw(st.none() | st.text(max_size=20)),
        processed_at=draw(I64),
    )


def exact(upsert: Upsert) -> tuple[Any, ...]:
    """Field values with exact types: ``True == 1`` and ``2.0 == 2`` must not pass as equal."""
    return (
        upsert.customer_id,
        upsert.op,
        sorted(
            (name, type(s.value).__name__, s.value, s.last_update, s.source)
            for name, s in upsert.properties.items()
        ),
        upsert.deleted_at,
        upsert.source,
        upsert.event_id,
        upsert.processed_at,
    )


def sample(*values: Value, op: Op = Op.UPSERT) -> Upsert:
    return Upsert(
        customer_id="c-42",
        op=op,
        properties={f"p{i}": PropertyState(v, 1570001049250, "crm") for i, v in enumerate(values)},
        deleted_at=1570001049250 if op is Op.DELETE else None,
        source="crm",
        event_id="e-1",
        processed_at=1700000000000,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@given(upsert=upserts())
def test_roundtrip(fmt: Literal["avro", "json"], upsert: Upsert) -> None:
    codec = UpsertCodec(fmt)
    decoded = codec.decode(codec.encode(upsert))
    assert decoded == upsert
    assert exact(decoded) == exact(upsert)


@given(upsert=upserts())
def test_decoder_reads_both_formats(upsert: Upsert) -> None:
    avro, json_codec = UpsertCodec("avro"), UpsertCodec("json")
    assert exact(json_codec.decode(avro.encode(upsert))) == exact(upsert)
    assert exact(avro.decode(json_codec.encode(upsert))) == exact(upsert)


def test_avro_header_is_soe_with_schema_fingerprint() -> None:
    canonical = to_parsing_canonical_form(json.loads(SCHEMA.read_text()))
    header = b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    assert UpsertCodec("avro").encode(sample("x")).startswith(header)


@pytest.mark.parametrize("fmt", FORMATS)
def test_union_branches_keep_types(fmt: Literal["avro", "json"]) -> None:
    codec = UpsertCodec(fmt)
    upsert = sample(True, False, 1, 0, 2.0, -0.0, 1.5, None, "1", 2**63 - 1)
    decoded = codec.decode(codec.encode(upsert))
    assert [type(s.value) for s in decoded.properties.values()] == [
        bool, bool, int, int, float, float, float, type(None), str, int
    ]  # fmt: skip


def test_json_form() -> None:
    upsert = sample("Marian", op=Op.UPSERT)
    assert orjson.loads(UpsertCodec("json").encode(upsert)) == {
        "customer_id": "c-42",
        "op": "UPSERT",
        "properties": {"p0": {"value": "Marian", "last_update": 1570001049250}},
        "deleted_at": None,
        "source": "crm",
        "event_id": "e-1",
        "processed_at": 1700000000000,
    }
    delete = orjson.loads(UpsertCodec("json").encode(sample(op=Op.DELETE)))
    assert delete["op"] == "DELETE"
    assert delete["deleted_at"] == 1570001049250
    assert delete["properties"] == {}


def test_property_source_comes_from_upsert() -> None:
    codec = UpsertCodec("avro")
    decoded = codec.decode(codec.encode(sample("x", 1)))
    assert {s.source for s in decoded.properties.values()} == {"crm"}


def test_bad_format() -> None:
    with pytest.raises(ConfigError):
        UpsertCodec("xml")  # type: ignore[arg-type]


VALID_JSON: dict[str, Any] = {
    "customer_id": "c",
    "op": "UPSERT",
    "properties": {"a": {"value": 1, "last_update": 1}},
    "source": "s",
    "processed_at": 1,
}


def test_minimal_json_upsert() -> None:
    decoded = UpsertCodec("json").decode(orjson.dumps(VALID_JSON))
    assert decoded == Upsert("c", Op.UPSERT, {"a": PropertyState(1, 1, "s")}, None, "s", None, 1)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "x",
        {},
        {**VALID_JSON, "op": "MERGE"},
        {**VALID_JSON, "op": ["UPSERT"]},
        {**VALID_JSON, "properties": []},
        {**VALID_JSON, "properties": {"a": 1}},
        {**VALID_JSON, "properties": {"a": {"value": [1], "last_update": 1}}},
        {**VALID_JSON, "properties": {"a": {"value": 1, "last_update": True}}},
        {**VALID_JSON, "customer_id": 1},
        {**VALID_JSON, "deleted_at": "yesterday"},
        {**VALID_JSON, "event_id": 5},
        {k: v for k, v in VALID_JSON.items() if k != "processed_at"},
    ],
)
def test_malformed_json_upsert(payload: object) -> None:
    with pytest.raises(InvalidEventError) as info:
        UpsertCodec("json").decode(orjson.dumps(payload))
    assert info.value.reason == "bad_upsert"


def test_garbage_and_truncated() -> None:
    codec = UpsertCodec("avro")
    with pytest.raises(InvalidEventError, match="bad_json"):
        codec.decode(b"{not json")
    data = codec.encode(sample("x"))
    with pytest.raises(InvalidEventError, match="bad_avro"):
        codec.decode(data[:-1])
