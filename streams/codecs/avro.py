"""Avro single-object encoding over the schema files in ``streams/schemas/``.

A message is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
parsing canonical form + the schemaless body. A :class:`SchemaRegistry` knows every version of one
record (the current file plus ``schemas/history/*.avsc``), so bodies written with an older schema
are resolved into the current one.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

from streams.errors import ConfigError, InvalidEventError

logger = logging.getLogger(__name__)

SOE_MARKER = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(SOE_MARKER) + FINGERPRINT_SIZE
SCHEMAS_DIR_ENV = "STREAMS_SCHEMAS_DIR"


# Inside the package, so a checkout and an installed wheel find them alike (the checkout's
# top-level schemas/ is a link to this directory).
PACKAGED_SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"


def schemas_dir() -> Path:
    """``$STREAMS_SCHEMAS_DIR``, else the ``schemas`` directory of the ``streams`` package."""
    configured = os.environ.get(SCHEMAS_DIR_ENV)
    if configured:
        return Path(configured)
    return PACKAGED_SCHEMAS_DIR


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One parsed schema file and its single-object header."""

    path: Path
    name: str  # full record name, e.g. dev.profilestreams.ProfileChange
    parsed: Any  # fastavro's parsed form: opaque, passed back to fastavro only
    fingerprint: bytes

    @property
    def header(self) -> bytes:
        return SOE_MARKER + self.fingerprint


def load_schema_file(path: Path) -> SchemaVersion:
    """Parse one ``.avsc`` file; a missing or invalid file is a :class:`ConfigError`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        # Each file gets its own name table: versions of a record share their type names.
        parsed = parse_schema(raw, named_schemas={})
    except (OSError, ValueError, KeyError, TypeError, SchemaParseException) as exc:
        raise ConfigError(f"cannot load Avro schema {path}: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ConfigError(f"Avro schema {path} is not a record")
    canonical = to_parsing_canonical_form(parsed)
    digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))  # already little-endian
    return SchemaVersion(path=path, name=str(parsed["name"]), parsed=parsed, fingerprint=digest)


class SchemaRegistry:
    """Every known writer version of one record, by fingerprint; ``current`` is the reader."""

    def __init__(self, current: SchemaVersion, history: list[SchemaVersion] | None = None) -> None:
        self.current = current
        self._writers: dict[bytes, SchemaVersion] = {current.fingerprint: current}
        for version in history or []:
            if version.name != current.name:
                raise ConfigError(f"{version.path} defines {version.name}, expected {current.name}")
            self._writers.setdefault(version.fingerprint, version)

    @classmethod
    def from_directory(cls, stem: str, directory: Path | None = None) -> SchemaRegistry:
        """``<dir>/<stem>.avsc`` plus every ``<dir>/history/*.avsc`` defining the same record."""
        root = directory if directory is not None else schemas_dir()
        current = load_schema_file(root / f"{stem}.avsc")
        history = [
            version
            for version in map(load_schema_file, sorted((root / "history").glob("*.avsc")))
            if version.name == current.name
        ]
        logger.debug("schemas loaded record=%s versions=%d", current.name, len(history) + 1)
        return cls(current, history)

    @property
    def versions(self) -> list[SchemaVersion]:
        """Every known writer version, the current one first."""
        return list(self._writers.values())

    @property
    def fingerprints(self) -> frozenset[bytes]:
        return frozenset(self._writers)

    def encode(self, datum: Mapping[str, object]) -> bytes:
        """Single-object encoding of ``datum`` with the current schema."""
        out = io.BytesIO()
        out.write(self.current.header)
        try:
            schemaless_writer(out, self.current.parsed, datum)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # fastavro quotes the offending value, which may be personal data: name the type only.
            raise InvalidEventError(
                "bad_type", f"cannot encode {self.current.name}: {type(exc).__name__}"
            ) from exc
        return out.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode a single-object message written with any known version of the record."""
        if not data.startswith(SOE_MARKER):
            raise InvalidEventError("bad_avro", "no single-object marker C3 01")
        if len(data) < HEADER_SIZE:
            raise InvalidEventError("bad_avro", f"shorter than the {HEADER_SIZE}-byte header")
        writer = self._writers.get(data[len(SOE_MARKER) : HEADER_SIZE])
        if writer is None:
            fp = data[len(SOE_MARKER) : HEADER_SIZE].hex()
            raise InvalidEventError(
                "unknown_schema", f"no known {self.current.name} schema has {fp=}"
            )
        reader = None if writer is self.current else self.current.parsed
        stream = io.BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            datum = schemaless_reader(stream, writer.parsed, reader)
        # Untrusted bytes make fastavro fail in many ways (EOF, bad index, bad UTF-8, ...).
        except Exception as exc:
            raise InvalidEventError("bad_avro", f"undecodable body: {type(exc).__name__}") from exc
        if stream.tell() != len(data):
            raise InvalidEventError("bad_avro", f"{len(data) - stream.tell()} trailing bytes")
        if not isinstance(datum, dict):
            raise InvalidEventError("bad_avro", "body is not a record")
        return datum


@functools.cache
def _cached_registry(stem: str, directory: Path) -> SchemaRegistry:
    return SchemaRegistry.from_directory(stem, directory)


def load_registry(stem: str, directory: Path | None = None) -> SchemaRegistry:
    """A process-wide registry per record and schemas directory (loaded once)."""
    return _cached_registry(stem, directory if directory is not None else schemas_dir())
