"""A chunk of source rows to encoded change events, with every check the processor would make.

:class:`ChunkConverter` is built once per job from the mapping and the source's columns and
works column by column (see :mod:`streams.bootstrap.columns`). Rows with a problem are left out
and reported; they never stop the chunk. Regular rows become bytes through the event template,
rows with an empty cell or a removal through dicts (:mod:`streams.bootstrap.events`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import filterfalse, repeat
from operator import itemgetter
from typing import Any, NamedTuple

from streams.bootstrap.columns import Column, ColumnConverter, property_column, seconds_column
from streams.bootstrap.convert import ms_to_seconds, to_customer_id
from streams.bootstrap.events import EventTemplate, dict_events, json_text
from streams.bootstrap.mapping import BootstrapMapping
from streams.errors import ConfigError


class RowLimits(NamedTuple):
    """The processor's own limits, checked before producing (else the row meets the DLQ)."""

    max_timestamp_ms: int
    max_event_bytes: int


@dataclass(slots=True)
class ChunkOutput:
    """The rows to produce (aligned lists) and what happened to the others."""

    lines: list[int] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)  # the customer ids, UTF-8: the Kafka keys
    stamps: list[float] | None = None  # update time per row (seconds); None: the snapshot's
    payloads: list[bytes] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail
    skipped: int = 0
    deletes: int = 0
    opt_outs: int = 0

    def absorb(self, more: ChunkOutput) -> None:
        """Append the rows and counts of ``more``: rows of the same chunk another converter
        settled (the native converter hands its odd rows to this one)."""
        self.lines += more.lines
        self.keys += more.keys
        self.payloads += more.payloads
        if self.stamps is not None:
            self.stamps += more.stamps or []
        self.rejected += more.rejected
        self.skipped += more.skipped
        self.deletes += more.deletes
        self.opt_outs += more.opt_outs


class Prop(NamedTuple):
    """One mapped property: its name, source column, kind for JSON text, and converter."""

    name: str
    column: str
    kind: str
    convert: ColumnConverter


def _fast_ids(values: Sequence[Any]) -> Sequence[Any] | None:
    if set(map(type, values)) <= {str} and "" not in values:
        return values if not values or min(values)[:1] != "\x00" else None
    return None


class ChunkConverter:
    """Convert chunks of one source with one mapping; reusable, chunk after chunk."""

    def __init__(
        self,
        mapping: BootstrapMapping,
        columns: Sequence[str] | None,
        *,
        job_id: str,
        snapshot_ms: int,
        since_ms: int | None,
        limits: RowLimits,
        text_source: bool,
    ) -> None:
        if columns is not None:
            missing = [name for name in mapping.columns() if name not in columns]
            if missing:
                raise ConfigError(
                    f"column(s) {', '.join(missing)} not in the source; it has: "
                    + ", ".join(columns)
                )
        if since_ms is not None and mapping.modified_at_column is None:
            raise ConfigError("--since needs modified_at_column in the mapping")
        tz = mapping.tz
        emails = frozenset(mapping.email_properties)
        self._columns = list(columns) if columns is not None else None
        self._id_column = mapping.id_column
        self._ids = ColumnConverter(_fast_ids, to_customer_id, placeholder="-")
        self._props = []
        for p in mapping.properties:
            email = p.to_property in emails
            kind = "email" if p.type == "email" or (p.type == "string" and email) else p.type
            convert = property_column(p.type, email=email, text=text_source, tz=tz)
            self._props.append(Prop(p.to_property, p.from_column, kind, convert))
        self._constants = [(c.to_property, c.value) for c in mapping.constant_columns]
        self._null_empty = mapping.empty_values == "null"
        ts = mapping.update_timestamp
        self._ts_column = ts.from_column if ts else None
        self._stamps = seconds_column(tz, "bad_timestamp", limits.max_timestamp_ms)
        self._since = None
        if since_ms is not None and mapping.modified_at_column is not None:
            modified = seconds_column(tz, "bad_modified_at")
            self._since = (mapping.modified_at_column, modified, since_ms / 1000)
        self._removal = mapping.removal
        self._removal_values = frozenset(
            v.strip().casefold() for v in (mapping.removal.values if mapping.removal else ())
        )
        self._snapshot_seconds = ms_to_seconds(snapshot_ms)
        self._source = mapping.source
        self._event_prefix = f"{job_id}:"
        self._max_bytes = limits.max_event_bytes
        self._template = self._compile_template()

    # What the native converter (streams.bootstrap.native) shares with this one.
    @property
    def id_column(self) -> str:
        return self._id_column

    @property
    def ts_column(self) -> str | None:
        return self._ts_column

    @property
    def props(self) -> list[Prop]:
        return list(self._props)

    @property
    def template(self) -> EventTemplate:
        return self._template

    @property
    def stamps(self) -> ColumnConverter:
        """Converts the update_timestamp column to UNIX seconds."""
        return self._stamps

    @property
    def since(self) -> tuple[str, ColumnConverter, float] | None:
        """``--since``: the modified-at column, its converter and the earliest kept second."""
        return self._since

    @property
    def removal_column(self) -> str | None:
        return self._removal.column if self._removal is not None else None

    def is_removal(self, value: object) -> bool:
        """The removal column's value marks the row removed."""
        return value is not None and str(value).strip().casefold() in self._removal_values

    def _compile_template(self) -> EventTemplate:
        uses = [("id", "")]
        if self._ts_column is not None:
            uses.append(("ts", ""))
        uses += [(p.kind, p.name) for p in self._props]
        return EventTemplate(
            uses=uses,
            constants=self._constants,
            source=self._source,
            event_prefix=self._event_prefix,
            snapshot_seconds=self._snapshot_seconds,
        )

    def _getter(self, rows: Sequence[Any]) -> Callable[[str], list[Any]]:
        if self._columns is None:  # dict rows (JSONL)
            count = len(rows)
            return lambda name: list(map(dict.get, rows, repeat(name, count)))
        index = {name: position for position, name in enumerate(self._columns)}
        return lambda name: list(map(itemgetter(index[name]), rows))

    def convert(self, rows: Sequence[Any], lines: Sequence[int]) -> ChunkOutput:
        count = len(rows)
        out = ChunkOutput()
        if not count:
            return out
        column = self._getter(rows)
        dropped: dict[int, tuple[str, str]] = {}
        skipped: set[int] = set()

        def reject(result: Column, empty_reason: str | None, what: str) -> None:
            if empty_reason is not None:
                for index in result.empty:
                    dropped.setdefault(index, (empty_reason, f"{what} is empty"))
            for index, (reason, detail) in result.errors.items():
                dropped.setdefault(index, (reason, f"{what}: {detail}"))

        if self._since is not None:
            name, convert, since = self._since
            modified = convert(column(name))
            reject(modified, "bad_modified_at", f"column {name!r}")
            skipped = {i for i, s in enumerate(modified.values) if s is not None and s < since}
        raw_ids = column(self._id_column)
        ids = self._ids(raw_ids)
        reject(ids, "missing_id", "the id column")
        stamps: Column | None = None
        if self._ts_column is not None:
            stamps = self._stamps(column(self._ts_column))
            reject(stamps, "bad_timestamp", f"column {self._ts_column!r}")
        removals, delete = self._removals(column)
        removed = set(removals)
        props: list[Column] = []
        irregular = set(removed)
        for prop in self._props:
            raw = column(prop.column)
            converted = prop.convert(raw)
            if delete and converted.errors:  # a delete carries no properties
                errors = {i: e for i, e in converted.errors.items() if i not in removed}
                converted = Column(converted.values, converted.empty, errors)
            reject(converted, None, f"column {prop.column!r}")
            props.append(converted)
            irregular.update(converted.empty)
        for index in skipped:
            dropped.pop(index, None)

        regular: Sequence[int] = range(count)
        if dropped or skipped:
            bad = dropped.keys() | skipped
            regular = list(filterfalse(bad.__contains__, range(count)))
        fast, others = regular, []
        if irregular:
            fast = list(filterfalse(irregular.__contains__, regular))
            others = [i for i in regular if i in irregular]
        if fast:
            cells = [("id", ids)]
            if stamps is not None:
                cells.append(("ts", stamps))
            cells += [(p.kind, c) for p, c in zip(self._props, props, strict=True)]
            self._render(out, lines, fast, cells, count)
        if others:
            self._dicts(out, others, lines, ids, stamps, props, removed, delete)
        out.rejected = sorted((lines[i], reason, detail) for i, (reason, detail) in dropped.items())
        out.skipped = len(skipped)
        if removals:
            kept = sum(1 for i in removals if i not in dropped and i not in skipped)
            out.deletes, out.opt_outs = (kept, 0) if delete else (0, kept)
        if out.payloads and max(map(len, out.payloads)) > self._max_bytes:
            self._drop_large(out)
        return out

    def _render(
        self,
        out: ChunkOutput,
        lines: Sequence[int],
        fast: Sequence[int],
        cells: list[tuple[str, Column]],
        count: int,
    ) -> None:
        """Events of the regular rows ``fast`` through the template (all rows are rendered,
        in C, and the regular ones picked: cheaper than picking from every column)."""
        texts = [json_text(kind, column.values) for kind, column in cells]
        texts.insert(1, list(map(str, lines)))
        rendered = self._template.render(texts, count)
        whole = len(fast) == count
        if whole:
            out.payloads.extend(map(str.encode, rendered))
            out.lines.extend(lines)
            out.keys.extend(map(str.encode, cells[0][1].values))
            if self._ts_column is not None:
                out.stamps = list(cells[1][1].values)
            return
        out.payloads.extend(map(str.encode, map(rendered.__getitem__, fast)))
        out.lines.extend(map(lines.__getitem__, fast))
        out.keys.extend(map(str.encode, map(cells[0][1].values.__getitem__, fast)))
        if self._ts_column is not None:
            out.stamps = list(map(cells[1][1].values.__getitem__, fast))

    def _dicts(
        self,
        out: ChunkOutput,
        others: Sequence[int],
        lines: Sequence[int],
        ids: Column,
        stamps: Column | None,
        props: list[Column],
        removed: set[int],
        delete: bool,
    ) -> None:
        names = [p.name for p in self._props]
        empties = [set(c.empty) for c in props]
        removal = self._removal
        properties: list[dict[str, Any]] = []
        for i in others:
            values: dict[str, Any] = {}
            for name, column, empty in zip(names, props, empties, strict=True):
                if i in empty:
                    if self._null_empty:
                        values[name] = None
                    continue
                values[name] = column.values[i]
            values.update(self._constants)
            if removal is not None and not delete and i in removed:
                values[removal.property] = removal.property_value
            properties.append(values)
        row_stamps = [stamps.values[i] for i in others] if stamps is not None else None
        out.payloads.extend(
            dict_events(
                ids=[ids.values[i] for i in others],
                event_ids=[f"{self._event_prefix}{lines[i]}" for i in others],
                stamps=row_stamps or [self._snapshot_seconds] * len(others),
                properties=properties,
                deletes=[delete and i in removed for i in others],
                source=self._source,
            )
        )
        out.lines.extend(lines[i] for i in others)
        out.keys.extend(ids.values[i].encode() for i in others)
        if row_stamps is not None:
            out.stamps = (out.stamps or []) + row_stamps

    def _removals(self, column: Callable[[str], list[Any]]) -> tuple[list[int], bool]:
        """Rows marked removed, and whether they become deletes (else opt-outs)."""
        removal = self._removal
        if removal is None:
            return [], False
        flags = column(removal.column)
        try:
            verdict = {v: self.is_removal(v) for v in set(flags)}
            removals = (
                [i for i, v in enumerate(flags) if verdict[v]] if any(verdict.values()) else []
            )
        except TypeError:  # unhashable values (JSON arrays): one by one
            removals = [i for i, v in enumerate(flags) if self.is_removal(v)]
        return removals, removal.as_ == "delete"

    def _drop_large(self, out: ChunkOutput) -> None:
        small = [j for j, payload in enumerate(out.payloads) if len(payload) <= self._max_bytes]
        for j, payload in enumerate(out.payloads):
            if len(payload) > self._max_bytes:
                out.rejected.append((out.lines[j], "too_large", f"event of {len(payload)} bytes"))
        out.rejected.sort()
        out.payloads = [out.payloads[j] for j in small]
        out.lines = [out.lines[j] for j in small]
        out.keys = [out.keys[j] for j in small]
        if out.stamps is not None:
            out.stamps = [out.stamps[j] for j in small]
