from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.codecs.avro import (
    HEADER_SIZE,
    SOE_MARKER,
    SchemaRegistry,
    load_registry,
    load_schema_file,
    schemas_dir,
)
from streams.codecs.events import EventDecoder, encode_change_event_avro
from streams.errors import ConfigError, InvalidEventError
from streams.model import ChangeEvent, Op

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "streams" / "schemas"
V0 = SCHEMAS / "history" / "profile_change.v0.avsc"
NOW_MS = 1_700_000_000_000


def soe_with(schema_path: Path, datum: dict[str, Any]) -> bytes:
    """Single-object encoding done by hand, independent of the code under test."""
    raw = json.loads(schema_path.read_text())
    canonical = to_parsing_canonical_form(raw)
    out = io.BytesIO()
    out.write(b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")))
    schemaless_writer(out, parse_schema(raw, named_schemas={}), datum)
    return out.getvalue()


@pytest.fixture
def decoder() -> EventDecoder:
    return EventDecoder(max_event_bytes=4096, max_properties=10, max_clock_skew_ms=0)


def test_schemas_dir_defaults_to_the_package() -> None:
    assert schemas_dir() == SCHEMAS
    # The checkout's top-level schemas/ is the same directory, not a second copy.
    assert (REPO / "schemas").resolve() == SCHEMAS


def test_schemas_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMS_SCHEMAS_DIR", str(tmp_path))
    assert schemas_dir() == tmp_path


def test_registry_knows_current_and_history() -> None:
    registry = load_registry("profile_change")
    v0 = load_schema_file(V0)
    assert registry.current.path == SCHEMAS / "profile_change.avsc"
    assert registry.fingerprints == {registry.current.fingerprint, v0.fingerprint}
    assert v0.fingerprint != registry.current.fingerprint


def test_fingerprint_is_crc64_avro_little_endian(tmp_path: Path) -> None:
    # Test vector from the Avro specification: "int" has fingerprint 0x7275d51a3f395c8f.
    (tmp_path / "int.avsc").write_text(
        '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}'
    )
    assert fingerprint('"int"', "CRC-64-AVRO") == "8f5c393f1ad57572"
    version = load_schema_file(tmp_path / "int.avsc")
    assert version.header == SOE_MARKER + version.fingerprint
    assert len(version.fingerprint) == 8


def test_v0_record_read_with_current_schema(decoder: EventDecoder) -> None:
    data = soe_with(
        V0,
        {
            "customer_id": "c-42",
            "source": "legacy",
            "op": "upsert",
            "update_timestamp": 1570001049,
            "properties": {"city": "Brno", "vip": True},
        },
    )
    record = load_registry("profile_change").decode(data)
    assert record["event_id"] is None  # defaults of the fields v0 did not have
    assert record["property_timestamps"] == {}
    result = decoder.decode(b"c-42", data, 0, NOW_MS)
    assert result == ChangeEvent(
        "c-42", "legacy", Op.UPSERT, 1570001049000, {"city": "Brno", "vip": True}, {}, None
    )


def test_current_schema_roundtrip(decoder: EventDecoder) -> None:
    doc = {"customer_id": "c-1", "source": "crm", "op": "delete", "update_timestamp": "2020-01-01"}
    data = encode_change_event_avro(doc)
    assert data == soe_with(SCHEMAS / "profile_change.avsc", doc | {"properties": {}})
    assert decoder.decode(None, data, 0, NOW_MS).op is Op.DELETE


def test_unknown_fingerprint_rejected(decoder: EventDecoder) -> None:
    data = encode_change_event_avro({"customer_id": "c-1", "source": "crm"})
    forged = SOE_MARKER + bytes(8) + data[HEADER_SIZE:]
    with pytest.raises(InvalidEventError) as info:
        decoder.decode(None, forged, 0, NOW_MS)
    assert info.value.reason == "unknown_schema"


def test_truncated_body_rejected(decoder: EventDecoder) -> None:
    data = encode_change_event_avro(
        {"customer_id": "c-1", "source": "crm", "properties": {"a": "hello", "b": 2.5}}
    )
    for end in range(2, len(data)):
        with pytest.raises(InvalidEventError) as info:
            decoder.decode(None, data[:end], 0, NOW_MS)
        assert info.value.reason == "bad_avro", end


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # varint that never ends
        b"\x08c-42\x06crm\x00\x06",  # enum index 3 of 2 symbols
        b"\x08c-42\x06crm\x00\x00\x00\x00\x00extra",  # trailing bytes
        b"\x04\xff\xfe\x06crm\x00\x00\x00\x00\x00",  # customer_id not UTF-8
    ],
)
def test_garbage_body_rejected(decoder: EventDecoder, body: bytes) -> None:
    header = load_registry("profile_change").current.header
    with pytest.raises(InvalidEventError) as info:
        decoder.decode(None, header + body, 0, NOW_MS)
    assert info.value.reason == "bad_avro"


def test_valid_handmade_body_decodes(decoder: EventDecoder) -> None:
    # Same layout as the garbage cases above, to show they fail for the stated reason only.
    header = load_registry("profile_change").current.header
    result = decoder.decode(None, header + b"\x08c-42\x06crm\x00\x00\x00\x00\x00", 5, NOW_MS)
    assert (result.customer_id, result.source, result.timestamp) == ("c-42", "crm", 5)


def test_history_of_another_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "history").mkdir()
    shutil.copy(SCHEMAS / "profile_change.avsc", tmp_path)
    shutil.copy(V0, tmp_path / "history")
    shutil.copy(SCHEMAS / "profile_upsert.avsc", tmp_path / "history" / "other.avsc")
    registry = SchemaRegistry.from_directory("profile_change", tmp_path)
    assert len(registry.fingerprints) == 2


def test_mismatched_history_rejected() -> None:
    current = load_schema_file(SCHEMAS / "profile_change.avsc")
    other = load_schema_file(SCHEMAS / "profile_upsert.avsc")
    with pytest.raises(ConfigError):
        SchemaRegistry(current, [other])


def test_missing_or_invalid_schema_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SchemaRegistry.from_directory("profile_change", tmp_path)
    (tmp_path / "broken.avsc").write_text('{"type": "record", "name": "X", "fields": [{}]}')
    with pytest.raises(ConfigError):
        load_schema_file(tmp_path / "broken.avsc")


@pytest.mark.parametrize("payload", [b"\xc3", b"\xc3\x02{}", b"\xc3\x01\x00"])
def test_broken_marker_or_header(decoder: EventDecoder, payload: bytes) -> None:
    with pytest.raises(InvalidEventError) as info:
        decoder.decode(None, payload, 0, NOW_MS)
    assert info.value.reason == "bad_avro"
