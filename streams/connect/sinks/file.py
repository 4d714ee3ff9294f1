"""File sink: every flush becomes complete, immutable JSONL or CSV files in one directory.

- Atomic: each file is written to a hidden temp file (``.{prefix}-{random}.tmp``) in the same
  directory, fsynced, renamed into place, and the directory is fsynced before ``write``
  returns. A reader only ever sees complete files, and what the worker commits is on disk.
- Nothing stays open between flushes (the worker commits after every ``write``): one flush
  writes one file per partition, cut further where a file would pass ``rotate_bytes`` or where
  ``processed_at`` enters the next epoch-aligned ``rotate_seconds`` window. The worker's batch
  limits are therefore the main knobs: a file never holds more than one batch.
- Deterministic names: ``{prefix}-p{partition:05d}-{first:020d}-{last:020d}-{stamp}.{ext}``,
  with the offsets of the file's first and last records and the UTC time (``%Y%m%dT%H%M%SZ``)
  its first record was processed. Replaying the same batch rewrites the same names with the
  same bytes, and sorted names are the apply order.
- Files are an append log, not state. A reader rebuilds profiles by applying the files in
  sorted name order: one customer's upserts all live in one partition, in offset order. A
  replay with other batch boundaries leaves overlapping files; re-applying is harmless, and
  exact at every step when readers merge on ``last_update`` (``include_timestamps = true``).

Timestamps in files are UNIX seconds (an int when whole, ``-1`` when unknown), as in the
query API. CSV has no null: a property the upsert did not change and one it unset are both an
empty cell; only ``<prop>_last_update`` (``include_timestamps``) tells them apart.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streams.atomic_files import atomic_writer
from streams.codecs.timestamps import MAX_EPOCH_MS, ms_to_seconds
from streams.connect.errors import RetryableSinkError, SinkConfigError, SinkError
from streams.connect.records import Rejection, SinkRecord, WriteResult
from streams.connect.sink import BatchingSink
from streams.model import UNKNOWN_TS, Op, PropertyState, Upsert, Value
from streams.settings import Settings
from streams.validation import validation_problems

logger = logging.getLogger(__name__)

FIXED_COLUMNS = ("customer_id", "op", "deleted_at", "source", "event_id", "processed_at")
TIMESTAMP_SUFFIX = "_last_update"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class FileSinkOptions(BaseModel):
    """The ``[sink]`` table of a ``type = "file"`` connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path
    format: Literal["jsonl", "csv"] = "jsonl"
    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    rotate_seconds: int = Field(default=300, ge=1)
    include_timestamps: bool = False
    csv_columns: list[str] | None = None
    stale_temp_seconds: int = Field(default=3600, ge=1)

    @field_validator("directory", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _columns(self) -> FileSinkOptions:
        if self.format == "jsonl":
            if self.csv_columns is not None:
                raise ValueError('csv_columns only applies to format = "csv"')
            return self
        if not self.csv_columns:
            raise ValueError('format = "csv" needs csv_columns: the property names to export')
        if any(not name for name in self.csv_columns):
            raise ValueError("csv_columns must not contain an empty name")
        header = csv_header(self.csv_columns, self.include_timestamps)
        clashes = sorted({name for name in header if header.count(name) > 1})
        if clashes:
            raise ValueError(f"csv_columns give duplicate CSV columns: {', '.join(clashes)}")
        return self


def csv_header(columns: Sequence[str], include_timestamps: bool) -> list[str]:
    header = list(FIXED_COLUMNS)
    for name in columns:
        header.append(name)
        if include_timestamps:
            header.append(name + TIMESTAMP_SUFFIX)
    return header


def file_pattern(prefix: str) -> re.Pattern[str]:
    """Matches the complete files of ``prefix``; groups: partition, first, last, stamp, ext."""
    return re.compile(
        rf"{re.escape(prefix)}-p(\d{{5,}})-(\d{{20}})-(\d{{20}})-(\d{{8}}T\d{{6}}Z)\.(jsonl|csv)"
    )


def visible_files(directory: Path, prefix: str) -> list[Path]:
    """The complete files of ``prefix`` in apply order (sorted names)."""
    pattern = file_pattern(prefix)
    return sorted(path for path in directory.iterdir() if pattern.fullmatch(path.name))


def read_jsonl(path: Path) -> list[Upsert]:
    """The upserts of a JSONL file; ``last_update`` is -1 when written without timestamps."""
    with path.open("rb") as lines:
        return [_from_json(orjson.loads(line)) for line in lines]


@dataclass(slots=True)
class _Segment:
    """The encoded records of one file to be."""

    partition: int
    first_offset: int
    first_processed_at: int
    window: int
    size: int
    last_offset: int = -1
    lines: list[bytes] = field(default_factory=list)


class FileSink(BatchingSink):
    """Writes upserts to files; see the module docstring for layout and guarantees."""

    def __init__(self, options: Mapping[str, Any], *, name: str, settings: Settings) -> None:
        super().__init__()
        try:
            self.options = FileSinkOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise SinkConfigError(f"file sink {name!r}: {validation_problems(exc)}") from exc
        self.name = name
        self.settings = settings
        self.prefix = self.options.prefix or name
        self.directory = self.options.directory
        self._extension = self.options.format
        self._window_ms = self.options.rotate_seconds * 1000
        self._temp_pattern = re.compile(rf"\.{re.escape(self.prefix)}-[0-9a-f]{{16}}\.tmp")
        self._csv_buffer = io.StringIO()
        self._csv = csv.writer(self._csv_buffer)
        self._header = b""
        if self.options.csv_columns is not None:
            header = csv_header(self.options.csv_columns, self.options.include_timestamps)
            self._header = self._csv_line(header)

    def setup(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temp_files()
        except OSError as exc:
            raise SinkError(f"file sink {self.name!r}: cannot use {self.directory}: {exc}") from exc

    def write(self, batch: Sequence[SinkRecord]) -> WriteResult:
        rejected: list[Rejection] = []
        by_partition: dict[int, dict[int, SinkRecord]] = {}
        for record in batch:  # one offset is one record: a duplicate is written once
            by_partition.setdefault(record.partition, {})[record.offset] = record
        files = 0
        for partition in sorted(by_partition):
            records = sorted(by_partition[partition].values(), key=lambda r: r.offset)
            for segment in self._segments(partition, records, rejected):
                self._publish(self._file_name(segment), b"".join(segment.lines))
                files += 1
        if files:
            self._sync_directory()
        logger.debug(
            "sink=%s files=%d records=%d rejected=%d", self.name, files, len(batch), len(rejected)
        )
        return WriteResult(rejected)

    def _segments(
        self, partition: int, records: Sequence[SinkRecord], rejected: list[Rejection]
    ) -> Iterator[_Segment]:
        limit = self.options.rotate_bytes
        current: _Segment | None = None
        for record in records:
            try:
                line = self._encode(record.upsert)
            except ValueError as exc:
                rejected.append(Rejection(record, "bad_value", str(exc)))
                continue
            processed_at = record.upsert.processed_at
            window = processed_at // self._window_ms
            if current is not None and (
                current.size + len(line) > limit or window != current.window
            ):
                yield current
                current = None
            if current is None:
                current = _Segment(
                    partition, record.offset, processed_at, window, size=len(self._header)
                )
                current.lines.append(self._header)
            current.lines.append(line)
            current.size += len(line)
            current.last_offset = record.offset
        if current is not None:
            yield current

    def _file_name(self, segment: _Segment) -> str:
        seconds = min(max(segment.first_processed_at, 0), MAX_EPOCH_MS) // 1000
        stamp = datetime.fromtimestamp(seconds, UTC).strftime(_STAMP_FORMAT)
        return (
            f"{self.prefix}-p{segment.partition:05d}-{segment.first_offset:020d}"
            f"-{segment.last_offset:020d}-{stamp}.{self._extension}"
        )

    def _publish(self, name: str, payload: bytes) -> None:
        """Write ``payload`` as ``name`` atomically: temp file, fsync, rename."""
        temp_name = f".{self.prefix}-{secrets.token_hex(8)}.tmp"  # _temp_pattern's form
        try:
            with atomic_writer(self.directory / name, temp_name) as out:
                out.write(payload)
        except OSError as exc:
            raise RetryableSinkError(
                f"file sink {self.name!r}: cannot write {name}: {exc}"
            ) from exc

    def _sync_directory(self) -> None:
        # The renames must be durable before the worker commits the offsets.
        try:
            descriptor = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise RetryableSinkError(
                f"file sink {self.name!r}: cannot sync {self.directory}: {exc}"
            ) from exc

    def _remove_stale_temp_files(self) -> None:
        """Temp files of a crashed writer; recent ones may belong to a live replica."""
        cutoff = time.time() - self.options.stale_temp_seconds
        removed = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if not self._temp_pattern.fullmatch(entry.name):
                    continue
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        if removed:
            logger.info("sink=%s removed stale temp files count=%d", self.name, removed)

    def _encode(self, upsert: Upsert) -> bytes:
        for name, state in upsert.properties.items():
            if isinstance(state.value, float) and not math.isfinite(state.value):
                raise ValueError(f"property {name!r} is not a finite number")
        if self.options.csv_columns is None:
            try:
                return orjson.dumps(self._json_record(upsert), option=orjson.OPT_APPEND_NEWLINE)
            except orjson.JSONEncodeError as exc:
                raise ValueError(f"cannot encode as JSON: {exc}") from exc
        return self._csv_line(self._csv_row(upsert))

    def _json_record(self, upsert: Upsert) -> dict[str, Any]:
        properties: dict[str, Any]
        if self.options.include_timestamps:
            properties = {
                name: {"value": state.value, "last_update": ms_to_seconds(state.last_update)}
                for name, state in upsert.properties.items()
            }
        else:
            properties = {name: state.value for name, state in upsert.properties.items()}
        return {
            "customer_id": upsert.customer_id,
            "op": upsert.op.value,
            "properties": properties,
            "deleted_at": None if upsert.deleted_at is None else ms_to_seconds(upsert.deleted_at),
            "source": upsert.source,
            "event_id": upsert.event_id,
            "processed_at": ms_to_seconds(upsert.processed_at),
        }

    def _csv_row(self, upsert: Upsert) -> list[object]:
        deleted_at = upsert.deleted_at
        row: list[object] = [
            upsert.customer_id,
            upsert.op.value,
            "" if deleted_at is None else ms_to_seconds(deleted_at),
            upsert.source,
            upsert.event_id or "",
            ms_to_seconds(upsert.processed_at),
        ]
        timestamps = self.options.include_timestamps
        for name in self.options.csv_columns or ():
            state = upsert.properties.get(name)
            row.append("" if state is None else _cell(state.value))
            if timestamps:
                row.append("" if state is None else ms_to_seconds(state.last_update))
        return row

    def _csv_line(self, row: Sequence[object]) -> bytes:
        self._csv_buffer.seek(0)
        self._csv_buffer.truncate()
        self._csv.writerow(row)
        return self._csv_buffer.getvalue().encode()


def _cell(value: Value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _to_ms(seconds: int | float) -> int:
    if seconds == UNKNOWN_TS:
        return UNKNOWN_TS
    return seconds * 1000 if isinstance(seconds, int) else round(seconds * 1000)


def _from_json(record: dict[str, Any]) -> Upsert:
    source: str = record["source"]
    properties: dict[str, PropertyState] = {}
    for name, item in record["properties"].items():
        if isinstance(item, dict):
            properties[name] = PropertyState(item["value"], _to_ms(item["last_update"]), source)
        else:
            properties[name] = PropertyState(item, UNKNOWN_TS, source)
    deleted_at = record["deleted_at"]
    return Upsert(
        customer_id=record["customer_id"],
        op=Op(record["op"]),
        properties=properties,
        deleted_at=None if deleted_at is None else _to_ms(deleted_at),
        source=source,
        event_id=record["event_id"],
        processed_at=_to_ms(record["processed_at"]),
    )
