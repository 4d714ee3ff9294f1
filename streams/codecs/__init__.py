"""Wire formats: input change events, output upserts, Avro single-object encoding, timestamps."""

from streams.codecs.avro import (
    SOE_MARKER,
    SchemaRegistry,
    SchemaVersion,
    load_registry,
    load_schema_file,
    schemas_dir,
)
from streams.codecs.events import EventDecoder, decode_change_event_avro, encode_change_event_avro
from streams.codecs.timestamps import MAX_EPOCH_MS, ms_to_seconds, to_epoch_ms
from streams.codecs.upserts import UpsertCodec

__all__ = [
    "MAX_EPOCH_MS",
    "SOE_MARKER",
    "EventDecoder",
    "SchemaRegistry",
    "SchemaVersion",
    "UpsertCodec",
    "decode_change_event_avro",
    "encode_change_event_avro",
    "load_registry",
    "load_schema_file",
    "ms_to_seconds",
    "schemas_dir",
    "to_epoch_ms",
]
