"""Hypothesis strategies for the differential tests: input records of every kind (valid and
malformed JSON and Avro, every timestamp form, deletes, ties, unicode, oversized, key
mismatch, misrouted) and stored states of every shape."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import strategies as st

from streams.codecs.avro import load_registry, load_schema_file, schemas_dir
from streams.codecs.events import CHANGE_SCHEMA
from streams.kafka.partitioner import partition_for
from streams.model import Profile, PropertyState
from streams.processor.records import InputRecord
from streams.state.codec import encode_profile

T0 = 1_700_000_000
NOW_MS = (T0 + 100_000) * 1000
CUSTOMERS = ["c-1", "c-2", "ünï-3", "ann@example.com", "c\u2028x"]
SOURCES = ["web", "crm", "erp", "app"]
NAMES = ["city", "age", "vip", "score", "note", "é", "a\x00b", "x" * 70, "bob@example.com"]

i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1e16, 1e15, 1e-5, 1e-6, 1.5e-7, 9.2e18, -9.3e18, 1e300, 5e-324, 0.1]
)
texts = st.text(max_size=12) | st.sampled_from(
    ["", "Brno", "a\nb", "\x00", "\u2028", "😀", "x" * 400]
)
values = st.one_of(
    st.none(), st.booleans(), i64, st.integers(-3, 3), floats, st.integers(-3, 3).map(float), texts
)
seconds = st.integers(T0 - 50, T0 + 50)
iso_forms = st.builds(
    lambda s, form, frac: _iso(s, form, frac),
    seconds,
    st.sampled_from(["Z", "", " Z", "+02:00", "-05:30", "+0200", "date", "T-hour", "t", "bad"]),
    st.sampled_from(["", ".5", ".123", ".123456", ".1234567", ".0005"]),
)
timestamps = st.one_of(
    seconds,
    seconds.map(lambda s: s + 0.5),
    st.floats(T0 - 50, T0 + 50, allow_nan=False),
    iso_forms,
    st.sampled_from(
        [-1, -1.0, -2, 0, 0.0, True, None, "", [], {}, T0 * 1000, 2**63 - 1, 1e300, 1e16]
    ),
    st.sampled_from(["9999-12-31T23:59:59.9999Z", "1969-12-31T23:59:59Z", "0001-01-01"]),
    st.integers(T0 + 100_000, T0 + 110_000),  # in the future, beyond the skew or not
)


def _iso(s: int, form: str, frac: str) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(s, dt.UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if form == "date":
        return base[:10]
    if form == "T-hour":
        return base[:13]
    if form == "t":
        return base.replace("T", "t") + frac
    if form == "bad":
        return base[:10] + "X" + base[11:]
    if form == " Z":
        return base.replace("T", " ") + frac + "Z"
    return base + frac + form


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A change event document, valid or breaking one or more rules."""
    names = draw(st.lists(st.sampled_from(NAMES), max_size=6, unique=True))
    doc: dict[str, Any] = {
        "customer_id": draw(st.sampled_from(CUSTOMERS)),
        "source": draw(st.sampled_from(SOURCES)),
        "properties": {name: draw(values) for name in names},
    }
    if draw(st.booleans()):
        doc["update_timestamp"] = draw(timestamps)
    if names and draw(st.integers(0, 3)) == 0:
        chosen = draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True))
        doc["property_timestamps"] = {name: draw(timestamps) for name in chosen}
    if draw(st.integers(0, 3)) == 0:
        doc["event_id"] = draw(st.one_of(texts, st.integers(0, 5)))
    if draw(st.integers(0, 5)) == 0:
        doc["op"] = "delete"
        if draw(st.booleans()):
            doc["properties"] = {}
        if draw(st.booleans()):
            doc.pop("properties")
    breakage = draw(st.integers(0, 30))
    if breakage == 0:
        doc["op"] = draw(st.sampled_from(["DELETE", None, 1, "upsert"]))
    elif breakage == 1:
        doc["customer_id"] = draw(st.sampled_from([None, "", "\x00x", 5, ["c-1"]]))
    elif breakage == 2:
        doc["source"] = draw(st.sampled_from([None, "", 3]))
    elif breakage == 3:
        doc["extra"] = 1
    elif breakage == 4:
        doc["properties"] = draw(st.sampled_from([None, [], "x", {"": 1}, {"a": [1]}, {"a": {}}]))
    elif breakage == 5:
        doc["property_timestamps"] = draw(st.sampled_from([[], [1], "x", 0, {"nope": T0}, None]))
    elif breakage == 6:
        doc.pop("customer_id")
    elif breakage == 7:
        # Past a handful of entries the kernel's maps switch from searched to hashed.
        doc["properties"] = {f"p{i}": i for i in range(draw(st.sampled_from([4, 8, 16, 17, 40])))}
    return doc


def _json_text(doc: dict[str, Any], draw: st.DrawFn) -> bytes:
    text = orjson.dumps(doc)
    trick = draw(st.integers(0, 12))
    if trick == 0 and text.endswith(b"}"):  # an integer literal beyond int64, somewhere
        literal = draw(
            st.sampled_from(
                [
                    b"9223372036854775808",
                    b"-9223372036854775809",
                    b"18446744073709551616",
                    b"1" + b"0" * 30,
                    b"1e400",
                ]
            )
        )
        place = draw(st.sampled_from([b'"x":', b'"properties":{"big":']))
        closing = b"}" if place.endswith(b"{") or place.endswith(b':{"big":') else b""
        return text[:-1] + (b"," if len(text) > 2 else b"") + place + literal + closing + b"}"
    if trick == 1:  # a repeated key: the last value at the first place
        return text[:-1] + b',"source":' + orjson.dumps(draw(st.sampled_from(SOURCES))) + b"}"
    if trick == 2:
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    if trick == 3:
        depth = draw(st.sampled_from([3, 127, 128, 200, 1100]))
        return text[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
    if trick == 4:
        return draw(
            st.sampled_from(
                [
                    b"[]",
                    b"null",
                    b"1",
                    b'"s"',
                    b"\xef\xbb\xbf{}",
                    b"{}",
                    b"NaN",
                    b'{"customer_id":"c-1\xff"}',
                    b" {} ",
                    b"{}x",
                    # serde_json's arbitrary_precision number token, as an object key
                    b'{"customer_id":"c-1","source":"web",'
                    b'"properties":{"a":{"$serde_json::private::Number":"1"}}}',
                ]
            )
        )
    if trick == 5:
        return text.replace(b"}", b" } ", 1)
    if trick == 6 and b'"properties":{"' in text:  # a property named twice: first place, last value
        name = draw(st.sampled_from([b"city", b"p0", b"p16", b"p39"]))
        return text.replace(b'"properties":{', b'"properties":{"' + name + b'":"first",', 1)
    return text


def _avro_body(doc: dict[str, Any], draw: st.DrawFn) -> bytes:
    registry = load_registry(CHANGE_SCHEMA)
    properties = doc.get("properties")
    stamps = doc.get("property_timestamps")
    record = {
        "customer_id": _text_or(doc.get("customer_id"), "c-1"),
        "source": _text_or(doc.get("source"), "web"),
        "event_id": doc.get("event_id") if isinstance(doc.get("event_id"), str) else None,
        "op": doc.get("op") if doc.get("op") in ("upsert", "delete") else "upsert",
        "update_timestamp": _avro_timestamp(doc.get("update_timestamp")),
        "properties": {
            name: value
            for name, value in (properties.items() if isinstance(properties, dict) else ())
            if isinstance(value, (type(None), bool, float, str))
            or (type(value) is int and -(2**63) <= value < 2**63)
        },
        "property_timestamps": {
            name: ts
            for name, ts in (stamps.items() if isinstance(stamps, dict) else ())
            if _avro_timestamp(ts) is not None
        },
    }
    if draw(st.integers(0, 4)) == 0:
        record["properties"]["f"] = draw(st.sampled_from([float("nan"), float("inf"), 1e300]))
    if draw(st.integers(0, 5)) == 0:
        v0 = load_schema_file(schemas_dir() / "history" / "profile_change.v0.avsc")
        import io

        from fastavro import schemaless_writer

        out = io.BytesIO()
        out.write(v0.header)
        schemaless_writer(out, v0.parsed, record)
        data = out.getvalue()
    else:
        data = registry.encode(record)
    damage = draw(st.integers(0, 8))
    if damage == 0:
        return data[: draw(st.integers(0, len(data) - 1))]
    if damage == 1:
        return data + draw(st.binary(min_size=1, max_size=3))
    if damage == 2:
        return data[:10] + draw(st.binary(max_size=40))
    if damage == 3:
        position = draw(st.integers(10, len(data) - 1))
        flipped = data[position] ^ draw(st.integers(1, 255))
        return data[:position] + bytes([flipped]) + data[position + 1 :]
    if damage == 4:
        return b"\xc3\x01" + draw(st.binary(min_size=8, max_size=8)) + data[10:]
    return data


def _text_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _avro_timestamp(value: Any) -> Any:
    if value is None or type(value) in (float, str):
        return value
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    return None


@st.composite
def records(draw: st.DrawFn, partitions: int, max_size: int = 12) -> list[InputRecord]:
    out = []
    for offset in range(draw(st.integers(0, max_size))):
        doc = draw(documents())
        if draw(st.integers(0, 3)) == 0:
            value: bytes | None = _avro_body(doc, draw)
        else:
            value = _json_text(doc, draw)
        if draw(st.integers(0, 20)) == 0:
            value = draw(st.sampled_from([None, b"", b"x" * 3000]))
        customer = doc.get("customer_id")
        home = partition_for(customer.encode(), partitions) if isinstance(customer, str) else 0
        partition = home if draw(st.integers(0, 8)) else draw(st.integers(0, partitions - 1))
        key_kind = draw(st.integers(0, 6))
        if key_kind == 0:
            key = None
        elif key_kind == 1:
            key = b"someone-else"
        else:
            key = customer.encode() if isinstance(customer, str) else None
        record_ts = draw(st.sampled_from([-1, 0, NOW_MS - 5000, (T0 - 10) * 1000]))
        out.append(InputRecord(partition, offset, key, value, record_ts, None))
    return out


@st.composite
def stored_states(draw: st.DrawFn) -> dict[bytes, bytes]:
    """States of some customers: properties of every value type, watermarks, ties."""
    states = {}
    for customer in draw(st.lists(st.sampled_from(CUSTOMERS), unique=True)):
        # serde_json's number token as a name: a stored state may hold any name.
        stored_names = [*NAMES, "$serde_json::private::Number"]
        names = draw(st.lists(st.sampled_from(stored_names), max_size=5, unique=True))
        properties = {
            name: PropertyState(
                draw(values),
                draw(st.one_of(st.integers(T0 - 50, T0 + 50).map(lambda s: s * 1000), st.just(-1))),
                draw(st.sampled_from(SOURCES)),
            )
            for name in names
        }
        deleted = draw(st.one_of(st.none(), st.integers(T0 - 60, T0).map(lambda s: s * 1000)))
        state = encode_profile(Profile(properties, deleted))
        if draw(st.integers(0, 3)) == 0:
            # Another layout of the same state ("d" first, spaces, \u escapes): the kernel
            # reads its own layout directly and any other as a document.
            decoded = orjson.loads(state)
            state = json.dumps({"d": decoded["d"], "p": decoded["p"]}).encode()
        states[customer.encode()] = state
    return states
