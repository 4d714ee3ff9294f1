from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codecs.events import (
    EventDecoder,
    change_event,
    encode_change_event_avro,
    encode_event,
)
from streams.errors import ConfigError, InvalidEventError
from streams.model import ChangeEvent, Op
from streams.settings import Settings

NOW_MS = 1_700_000_000_000
RECORD_TS = 1_650_000_000_000
SKEW_MS = 300_000

Decode = Callable[..., ChangeEvent]


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer_id": "c-42",
        "source": "crm",
        "event_id": "e-1",
        "op": "upsert",
        "update_timestamp": 1570001049.25,
        "properties": {"first_name": "Marian", "email_status": "double_opt_in", "city": None},
        "property_timestamps": {"city": 1570001000},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not DROP}


DROP: Any = object()


@pytest.fixture
def decoder() -> EventDecoder:
    return EventDecoder(max_event_bytes=4096, max_properties=5, max_clock_skew_ms=SKEW_MS)


@pytest.fixture
def decode(decoder: EventDecoder) -> Decode:
    def _decode(
        doc: object,
        *,
        key: bytes | None = b"c-42",
        record_ts: int = RECORD_TS,
        avro: bool = False,
    ) -> ChangeEvent:
        if isinstance(doc, bytes):
            value = doc
        elif avro:
            assert isinstance(doc, Mapping)
            value = encode_change_event_avro(doc)
        else:
            value = orjson.dumps(doc)
        return decoder.decode(key, value, record_ts, NOW_MS)

    return _decode


def rejected(decode: Decode, doc: object, reason: str, **kwargs: Any) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as info:
        decode(doc, **kwargs)
    assert info.value.reason == reason, info.value
    assert info.value.detail
    return info.value


def typed(values: Mapping[str, object]) -> dict[str, tuple[type, object]]:
    """Values with their exact type: ``True == 1`` and ``2.0 == 2`` must not hide a change."""
    return {name: (type(value), value) for name, value in values.items()}


def test_typical_event(decode: Decode) -> None:
    result = decode(event())
    assert result == ChangeEvent(
        customer_id="c-42",
        source="crm",
        op=Op.UPSERT,
        timestamp=1570001049250,
        properties={"first_name": "Marian", "email_status": "double_opt_in", "city": None},
        property_timestamps={"city": 1570001000000},
        event_id="e-1",
    )
    assert result.timestamp_of("city") == 1570001000000
    assert result.timestamp_of("first_name") == 1570001049250


def test_minimal_event_uses_record_timestamp(decode: Decode) -> None:
    result = decode({"customer_id": "c-42", "source": "web", "properties": {"a": 1}}, key=None)
    assert result == ChangeEvent("c-42", "web", Op.UPSERT, RECORD_TS, {"a": 1}, {}, None)


def test_null_update_timestamp_uses_record_timestamp(decode: Decode) -> None:
    assert decode(event(update_timestamp=None)).timestamp == RECORD_TS


def test_missing_record_timestamp_is_unknown(decode: Decode) -> None:
    assert decode(event(update_timestamp=DROP), record_ts=-1).timestamp == -1


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (1570001049, 1570001049000),
        (1570001049.5, 1570001049500),
        ("2019-10-02T07:24:09.25Z", 1570001049250),
        ("2019-10-02T09:24:09+02:00", 1570001049000),
        (-1, -1),
    ],
)
def test_update_timestamp_forms(decode: Decode, raw: object, ms: int) -> None:
    assert decode(event(update_timestamp=raw)).timestamp == ms
    assert decode(event(update_timestamp=raw), avro=True).timestamp == ms


def test_per_property_timestamp_forms(decode: Decode) -> None:
    doc = event(
        properties={"a": 1, "b": 2, "c": 3},
        property_timestamps={"a": -1, "b": "2019-10-02T07:24:09Z", "c": 1570001000.5},
    )
    expected = {"a": -1, "b": 1570001049000, "c": 1570001000500}
    assert decode(doc).property_timestamps == expected
    assert decode(doc, avro=True).property_timestamps == expected


def test_value_types_kept_exactly() -> None:
    props = {"b": True, "i": 1, "f": 2.0, "s": "x", "n": None, "big": 2**63 - 1, "neg": -(2**63)}
    doc = event(properties=props, property_timestamps={})
    decoder = EventDecoder(max_event_bytes=4096, max_properties=10, max_clock_skew_ms=0)
    for value in (orjson.dumps(doc), encode_change_event_avro(doc)):
        result = decoder.decode(None, value, RECORD_TS, NOW_MS)
        assert typed(result.properties) == typed(props)


def test_delete(decode: Decode) -> None:
    doc = event(op="delete", properties=DROP, property_timestamps=DROP)
    assert decode(doc) == ChangeEvent("c-42", "crm", Op.DELETE, 1570001049250, {}, {}, "e-1")
    assert decode(doc, avro=True) == decode(doc)


def test_delete_falls_back_to_record_timestamp(decode: Decode) -> None:
    doc = {"customer_id": "c-42", "source": "crm", "op": "delete"}
    assert decode(doc).timestamp == RECORD_TS


def test_within_skew_accepted(decode: Decode) -> None:
    limit_s = (NOW_MS + SKEW_MS) / 1000
    assert decode(event(update_timestamp=limit_s)).timestamp == NOW_MS + SKEW_MS
    doc = event(properties={"a": 1}, property_timestamps={"a": limit_s})
    assert decode(doc).property_timestamps == {"a": NOW_MS + SKEW_MS}
    assert decode(event(update_timestamp=None), record_ts=NOW_MS + SKEW_MS).timestamp > NOW_MS


def test_key_missing_is_fine(decode: Decode) -> None:
    assert decode(event(), key=None).customer_id == "c-42"


def test_from_settings() -> None:
    settings = Settings(max_event_bytes=1024, max_properties=3, max_clock_skew_seconds=1.5)
    decoder = EventDecoder.from_settings(settings)
    too_late = orjson.dumps(event(update_timestamp=(NOW_MS + 1501) / 1000))
    with pytest.raises(InvalidEventError, match="future_timestamp"):
        decoder.decode(None, too_late, RECORD_TS, NOW_MS)
    ok = orjson.dumps(event(update_timestamp=(NOW_MS + 1500) / 1000))
    assert decoder.decode(None, ok, RECORD_TS, NOW_MS).timestamp == NOW_MS + 1500


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_event_bytes": 0, "max_properties": 1, "max_clock_skew_ms": 0},
        {"max_event_bytes": 1, "max_properties": 0, "max_clock_skew_ms": 0},
        {"max_event_bytes": 1, "max_properties": 1, "max_clock_skew_ms": -1},
    ],
)
def test_bad_config(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EventDecoder(**kwargs)


# --- rejections: every reason code, with a real payload ---


@pytest.mark.parametrize("value", [None, b""])
def test_empty(decoder: EventDecoder, value: bytes | None) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode(b"c-42", value, RECORD_TS, NOW_MS)
    assert info.value.reason == "empty"


def test_too_large(decode: Decode) -> None:
    rejected(decode, event(properties={"a": "x" * 5000}), "too_large")


@pytest.mark.parametrize(
    "payload",
    [b"{", b'{"customer_id": "c-42",}', b"NaN", b"\xff\xfe", b'{"a": 1} trailing', b"1e400"],
)
def test_bad_json(decode: Decode, payload: bytes) -> None:
    rejected(decode, payload, "bad_json")


def test_bad_json_detail_does_not_echo_payload(decode: Decode) -> None:
    error = rejected(decode, b'{"customer_id": "john.doe@example.com", ', "bad_json")
    assert "example.com" not in str(error)


@pytest.mark.parametrize("payload", [b"[]", b'"c-42"', b"42", b"null", b"true"])
def test_not_an_object(decode: Decode, payload: bytes) -> None:
    rejected(decode, payload, "not_an_object")


@pytest.mark.parametrize("customer_id", [DROP, None, ""])
def test_missing_customer_id(decode: Decode, customer_id: object) -> None:
    rejected(decode, event(customer_id=customer_id), "missing_customer_id", key=None)


@pytest.mark.parametrize("customer_id", [42, ["c-42"], {"id": "c-42"}, True, "\x00meta"])
def test_customer_id_bad_type(decode: Decode, customer_id: object) -> None:
    rejected(decode, event(customer_id=customer_id), "bad_type", key=None)


def test_unknown_field_catches_typos(decode: Decode) -> None:
    doc = event(properties=DROP, property_timestamps=DROP)
    doc["propreties"] = {"a": 1}
    error = rejected(decode, doc, "unknown_field")
    assert "propreties" in error.detail


def test_unknown_field_detail_masks_email(decode: Decode) -> None:
    error = rejected(decode, {**event(), "john.doe@example.com": 1}, "unknown_field")
    assert "john.doe@example.com" not in str(error)


@pytest.mark.parametrize("source", [DROP, None, "", 7, ["crm"]])
def test_missing_source(decode: Decode, source: object) -> None:
    rejected(decode, event(source=source), "missing_source")


@pytest.mark.parametrize("op", ["UPSERT", "merge", None, 1, ["upsert"], {"op": "delete"}])
def test_bad_op(decode: Decode, op: object) -> None:
    rejected(decode, event(op=op), "bad_op")


def test_delete_with_properties(decode: Decode) -> None:
    rejected(decode, event(op="delete", property_timestamps=DROP), "bad_op")


def test_delete_needs_known_timestamp(decode: Decode) -> None:
    doc = event(op="delete", properties=DROP, property_timestamps=DROP, update_timestamp=-1)
    rejected(decode, doc, "bad_timestamp")
    rejected(decode, {**doc, "update_timestamp": None}, "bad_timestamp", record_ts=-1)


@pytest.mark.parametrize("properties", [None, [], ["a", 1], "a=1", 1])
def test_properties_not_an_object(decode: Decode, properties: object) -> None:
    rejected(decode, event(properties=properties, property_timestamps=DROP), "bad_type")


@pytest.mark.parametrize(
    "value",
    [{"nested": 1}, [1, 2], [], {}],
)
def test_property_value_bad_type(decode: Decode, value: object) -> None:
    error = rejected(decode, event(properties={"city": value}), "bad_type")
    assert "city" in error.detail


def test_property_name_empty(decode: Decode) -> None:
    rejected(decode, event(properties={"": 1}, property_timestamps=DROP), "bad_type")


def test_property_name_email_masked(decode: Decode) -> None:
    error = rejected(decode, event(properties={"john.doe@example.com": [1]}), "bad_type")
    assert "john.doe@example.com" not in str(error)
    assert "example.com" in error.detail


def test_non_finite_float_via_avro(decode: Decode) -> None:
    for bad in (float("nan"), float("inf"), float("-inf")):
        rejected(decode, event(properties={"score": bad}), "bad_type", avro=True)


def test_too_many_properties(decode: Decode) -> None:
    props = {f"p{i}": i for i in range(6)}
    rejected(decode, event(properties=props, property_timestamps=DROP), "too_many_properties")
    props.pop("p5")
    assert len(decode(event(properties=props, property_timestamps=DROP)).properties) == 5


def test_property_timestamp_for_unknown_property(decode: Decode) -> None:
    rejected(decode, event(property_timestamps={"country": 1570001000}), "bad_timestamp")


@pytest.mark.parametrize("pts", [[1], "city", 5, False])
def test_property_timestamps_not_an_object(decode: Decode, pts: object) -> None:
    rejected(decode, event(property_timestamps=pts), "bad_type")


@pytest.mark.parametrize("raw", [True, -5, "soon", 1570001049250, {"s": 1}])
def test_bad_update_timestamp(decode: Decode, raw: object) -> None:
    rejected(decode, event(update_timestamp=raw), "bad_timestamp")


def test_bad_property_timestamp(decode: Decode) -> None:
    error = rejected(decode, event(property_timestamps={"city": "later"}), "bad_timestamp")
    assert "city" in error.detail


def test_future_timestamps(decode: Decode) -> None:
    too_late_s = (NOW_MS + SKEW_MS + 1) / 1000
    rejected(decode, event(update_timestamp=too_late_s), "future_timestamp")
    rejected(decode, event(property_timestamps={"city": too_late_s}), "future_timestamp")
    rejected(decode, event(update_timestamp="2100-01-01T00:00:00Z"), "future_timestamp")
    late_record = NOW_MS + SKEW_MS + 1
    rejected(decode, event(update_timestamp=None), "future_timestamp", record_ts=late_record)


@pytest.mark.parametrize("key", [b"c-43", b"", b"C-42", b"c-42 "])
def test_key_mismatch(decode: Decode, key: bytes) -> None:
    error = rejected(decode, event(), "key_mismatch", key=key)
    assert "c-4" not in error.detail


def test_key_is_compared_as_utf8(decode: Decode) -> None:
    doc = event(customer_id="kund-ö@example.com")
    assert decode(doc, key="kund-ö@example.com".encode()).customer_id == "kund-ö@example.com"
    error = rejected(decode, doc, "key_mismatch", key=b"kund-o@example.com")
    assert "example.com" not in str(error)


@pytest.mark.parametrize("event_id", [1, ["e"], {"id": "e"}, True])
def test_event_id_not_a_string(decode: Decode, event_id: object) -> None:
    rejected(decode, event(event_id=event_id), "bad_type")


# --- JSON and Avro inputs agree ---

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_seconds = st.one_of(
    st.just(-1),
    st.integers(min_value=0, max_value=NOW_MS // 1000),
    st.floats(min_value=0, max_value=NOW_MS / 1000),
)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    props = draw(st.dictionaries(st.text(min_size=1, max_size=10), _values, max_size=5))
    doc: dict[str, Any] = {
        # A leading NUL is reserved for the state store (see test_customer_id_bad_type).
        "customer_id": draw(st.text(min_size=1, max_size=20).filter(lambda c: c[0] != "\x00")),
        "source": draw(st.sampled_from(["crm", "web", "hr"])),
    }
    if draw(st.booleans()):
        doc["event_id"] = draw(st.none() | st.text(max_size=10))
    if draw(st.booleans()):
        doc["update_timestamp"] = draw(st.none() | _seconds)
    if not props and draw(st.booleans()):
        doc["op"] = "delete"
        doc["update_timestamp"] = draw(st.integers(min_value=0, max_value=NOW_MS // 1000))
    else:
        doc["properties"] = props
        names = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        doc["property_timestamps"] = {name: draw(_seconds) for name in names}
    return doc


@given(valid_events())
def test_json_and_avro_decode_alike(doc: dict[str, Any]) -> None:
    decoder = EventDecoder(max_event_bytes=4096, max_properties=5, max_clock_skew_ms=SKEW_MS)
    key = doc["customer_id"].encode()
    from_json = decoder.decode(key, orjson.dumps(doc), RECORD_TS, NOW_MS)
    from_avro = decoder.decode(key, encode_change_event_avro(doc), RECORD_TS, NOW_MS)
    assert from_json == from_avro
    assert typed(from_json.properties) == typed(from_avro.properties)
    assert typed(from_json.properties) == typed(doc.get("properties", {}))


# -- the constructor and the encoder every ingestion path uses ---------------------------------

ENCODER = EventDecoder(max_event_bytes=4096, max_properties=10, max_clock_skew_ms=SKEW_MS)


def test_a_built_event_has_one_shape_and_round_trips() -> None:
    upsert = change_event(
        "c-1", "crm", 1_650_000_000.5, {"a": 1}, property_timestamps={"a": 1}, event_id="e"
    )
    assert list(upsert) == [
        "customer_id",
        "source",
        "event_id",
        "update_timestamp",
        "properties",
        "property_timestamps",
    ]
    assert list(change_event("c-1", "crm", 1)) == [
        "customer_id",
        "source",
        "update_timestamp",
        "properties",
    ]
    assert change_event("c-1", "crm", 1)["properties"] == {}
    delete = change_event("c-1", "crm", 1, op=Op.DELETE)
    assert delete == {"customer_id": "c-1", "source": "crm", "op": "delete", "update_timestamp": 1}
    key, value, decoded = ENCODER.encode(upsert, NOW_MS)
    assert key == b"c-1"
    assert orjson.loads(value) == upsert
    expected = ChangeEvent("c-1", "crm", Op.UPSERT, 1_650_000_000_500, {"a": 1}, {"a": 1000}, "e")
    assert decoded == expected
    assert ENCODER.encode(delete, NOW_MS).event.op is Op.DELETE
    assert encode_event({"customer_id": 5}) == (None, b'{"customer_id":5}')  # the decoder says why


@pytest.mark.parametrize(
    ("built", "reason"),
    [
        (change_event("c-1", "crm", 1, {"a": 1}, op=Op.DELETE), "bad_op"),  # kept, refused
        (change_event("c-1", "crm", 1, {"a": [1]}), "bad_type"),  # type: ignore[dict-item]
        (change_event("c-\ud800", "crm", 1), "bad_type"),  # not UTF-8
        (change_event("c-1", "crm", 1, {"a": 2**64}), "integer_out_of_range"),
        (change_event("c-1", "crm", "yesterday"), "bad_timestamp"),
        (change_event("c-1", "crm", NOW_MS / 1000 + 301), "future_timestamp"),
        (change_event("", "crm", 1), "missing_customer_id"),
        (change_event(None, "crm", 1), "missing_customer_id"),  # type: ignore[arg-type]
        (change_event("c-1", "", 1), "missing_source"),
    ],
)
def test_a_built_event_is_checked_by_the_decoders_rules(built: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        ENCODER.encode(built, NOW_MS)
    assert caught.value.reason == reason
