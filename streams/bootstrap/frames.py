"""Plain CSV chunks converted column-wise by polars (Rust, without the GIL): the fast path where
the Rust kernel's ``csvfast`` (:mod:`streams.bootstrap.native`) was not built.

Every row is either converted here, to exactly the bytes the Python converter
(:class:`streams.bootstrap.rows.ChunkConverter`) makes of it, or handed to that converter. A
check here may send a good row to Python; it never lets through a row Python would treat
otherwise. Checked in Rust: ids and strings without a character JSON escapes, emails against
the same pattern, whole numbers, finite floats that polars writes as Python does, update times
in range, the size of the event. Columns with few distinct values (booleans, dates, removal
flags, modified-at times) are converted once per distinct value by the Python column
converters themselves. Empty cells, removals and rows with a problem go to Python, which
reports them with their line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from streams.bootstrap.columns import MEMO_LIMIT, ColumnConverter
from streams.bootstrap.convert import EMAIL_MAX, EMAIL_PATTERN
from streams.bootstrap.events import json_text
from streams.bootstrap.files import block_rows
from streams.bootstrap.mapping import BootstrapMapping
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, Prop, RowLimits
from streams.bootstrap.sources import Chunk

# What a JSON string escapes: values holding one go to Python (contains_any: cheaper than a regex)
_JSON_SPECIAL = [chr(code) for code in range(0x20)] + ['"', "\\"]
_EMAIL = f"^(?:{EMAIL_PATTERN.pattern})$"
# Python writes floats below 1e-4 and from 1e16 up in exponent form, polars only the large ones.
_PLAIN_FLOAT_MIN = 1e-4
_PLAIN_FLOAT_MAX = 1e16
_LINE = "__line"
_OK, _SKIP, _EVENT, _KEY, _STAMP = "__ok", "__skip", "__event", "__key", "__stamp"


class FrameConverter:
    """Converts :attr:`Chunk.block` chunks in polars, any other chunk in Python."""

    def __init__(
        self,
        mapping: BootstrapMapping,
        columns: Sequence[str],
        *,
        job_id: str,
        snapshot_ms: int,
        since_ms: int | None,
        limits: RowLimits,
        delimiter: str = ",",
    ) -> None:
        def python(names: Sequence[str]) -> ChunkConverter:
            return ChunkConverter(
                mapping,
                names,
                job_id=job_id,
                snapshot_ms=snapshot_ms,
                since_ms=since_ms,
                limits=limits,
                text_source=True,
            )

        self.full = python(columns)  # checks that every mapped column exists
        position = {name: index for index, name in enumerate(columns)}  # the last one wins
        self._positions = sorted({position[name] for name in mapping.columns()})
        self._names = [columns[index] for index in self._positions]
        # Rows of a block that need Python come from the frame: the read columns only.
        self._rows = python(self._names)
        self._delimiter = delimiter
        self._max_bytes = limits.max_event_bytes
        self._latest = limits.max_timestamp_ms / 1000
        self._fragments = self._rows.template.fragments
        self._memos = {
            prop.column: _ValueMemo(prop.convert, pl.String, prop.kind)
            for prop in self._rows.props
            if prop.kind in ("bool", "datetime")
        }
        since = self._rows.since
        self._modified = _ValueMemo(since[1], pl.Float64) if since is not None else None
        # The frame's own columns are named __*: a source column of that name stays in Python.
        self._python_only = any(name.startswith("__") for name in self._names)

    def convert_chunk(self, chunk: Chunk) -> ChunkOutput:
        if chunk.block is None:
            return self.full.convert(chunk.rows, chunk.lines)
        if not chunk.lines:
            return ChunkOutput()
        if self._python_only:
            return self._in_python(chunk.block, chunk.lines)
        try:
            frame = pl.read_csv(
                chunk.block,
                has_header=False,
                columns=self._positions,
                infer_schema=False,
                quote_char=None,
                separator=self._delimiter,
            )
        except pl.exceptions.PolarsError:
            frame = None
        if frame is None or frame.height != len(chunk.lines):  # not expected: Python decides
            return self._in_python(chunk.block, chunk.lines)
        frame.columns = self._names
        return self._convert(frame.with_columns(pl.Series(_LINE, chunk.lines, pl.Int64)))

    def _in_python(self, block: bytes, lines: Sequence[int]) -> ChunkOutput:
        return self.full.convert(block_rows(block, self._delimiter), lines)

    def _convert(self, frame: pl.DataFrame) -> ChunkOutput:
        rows = self._rows
        ident = pl.col(rows.id_column)
        oks = [ident.is_not_null() & ~ident.str.contains_any(_JSON_SPECIAL)]
        slots = [ident, pl.col(_LINE).cast(pl.String)]
        extra: list[pl.Series] = []  # columns converted in Python, once per distinct value
        derived: list[pl.Expr] = []  # typed columns, computed in the query before the checks
        stamp: pl.Expr | None = None
        if rows.ts_column is not None:
            derived.append(pl.col(rows.ts_column).cast(pl.Float64, strict=False).alias("__ts"))
            stamp = pl.col("__ts")
            in_range = (stamp >= _PLAIN_FLOAT_MIN) & (stamp <= self._latest)
            oks.append(stamp.is_finite() & (in_range | (stamp == 0.0)))
            slots.append(stamp.cast(pl.String))
        for number, prop in enumerate(rows.props):
            ok, text = self._property(frame, prop, f"__p{number}", extra, derived)
            oks.append(ok)
            slots.append(text)
        removal = rows.removal_column
        if removal is not None:
            oks.append(~pl.col(removal).is_in(self._removal_values(frame[removal])))
            if rows.is_removal(""):  # an empty cell marks a removal: Python builds it
                oks.append(pl.col(removal).is_not_null())
        skip: pl.Expr = pl.lit(False)
        if rows.since is not None:
            name, _, since = rows.since
            assert self._modified is not None
            extra.append(self._modified(frame[name], "__modified"))
            oks.append(pl.col("__modified").is_not_null())
            skip = (pl.col("__modified") < since).fill_null(False)
        parts: list[pl.Expr] = []
        for fragment, slot in zip(self._fragments, slots, strict=False):
            parts += [pl.lit(fragment), slot]
        parts.append(pl.lit(self._fragments[-1]))
        fits = pl.col(_EVENT).bin.size() <= self._max_bytes
        columns = [
            pl.all_horizontal(oks).fill_null(False).alias(_OK),
            skip.alias(_SKIP),
            pl.concat_str(parts).cast(pl.Binary).alias(_EVENT),
            ident.cast(pl.Binary).alias(_KEY),
            pl.col(_LINE),
        ]
        if stamp is not None:
            columns.append(stamp.alias(_STAMP))
        else:
            columns.append(pl.lit(None, pl.Float64).alias(_STAMP))
        # One query, one trip out of the GIL (a thread coming back to it waits its turn).
        done = (
            frame.hstack(extra)
            .lazy()
            .with_columns(derived)
            .select(columns)
            .with_columns((pl.col(_OK) & ~pl.col(_SKIP) & fits).alias(_OK))
            .collect()
        )
        whole = bool(done[_OK].all())
        good = done if whole else done.filter(_OK)
        out = ChunkOutput(
            keyed=good.select(key=_KEY, line=_LINE, stamp=_STAMP),
            lines=good[_LINE].to_list(),
            keys=good[_KEY].to_list(),
            stamps=good[_STAMP].to_list() if stamp is not None else None,
            payloads=good[_EVENT].to_list(),
        )
        if not whole:
            out.skipped = int(done[_SKIP].sum())
            others = frame.filter(~done[_OK] & ~done[_SKIP])
            if others.height:
                self._merge(out, others)
        return out

    def _property(
        self,
        frame: pl.DataFrame,
        prop: Prop,
        alias: str,
        extra: list[pl.Series],
        derived: list[pl.Expr],
    ) -> tuple[pl.Expr, pl.Expr]:
        """(row is fine, JSON text) of one property column; adds what it needs computed first
        to ``extra`` (a Series) or ``derived`` (an expression)."""
        cell = pl.col(prop.column)
        if prop.kind == "string":
            return cell.is_not_null() & ~cell.str.contains_any(_JSON_SPECIAL), cell
        if prop.kind == "email":
            ok = cell.str.contains(_EMAIL) & (cell.str.len_chars() <= EMAIL_MAX)
            return ok, cell
        if prop.kind == "int":
            derived.append(cell.cast(pl.Int64, strict=False).alias(alias))
            number = pl.col(alias)
            return number.is_not_null(), number.cast(pl.String)
        if prop.kind == "float":
            derived.append(cell.cast(pl.Float64, strict=False).alias(alias))
            number = pl.col(alias)
            size = number.abs()
            plain = (size >= _PLAIN_FLOAT_MIN) & (size < _PLAIN_FLOAT_MAX)
            return number.is_finite() & (plain | (number == 0.0)), number.cast(pl.String)
        # bool, datetime: few distinct values, each converted by the Python converter
        extra.append(self._memos[prop.column](frame[prop.column], alias))
        return pl.col(alias).is_not_null(), pl.col(alias)

    def _removal_values(self, flags: pl.Series) -> list[str]:
        distinct = flags.drop_nulls().unique().to_list()
        return [value for value in distinct if self._rows.is_removal(value)]

    def _merge(self, out: ChunkOutput, others: pl.DataFrame) -> None:
        """Rows the Python converter settles (fill_null: Python sees empty cells as "")."""
        rows = others.select(self._names).fill_null("").rows()
        more = self._rows.convert(rows, others[_LINE].to_list())
        more_keyed = pl.DataFrame(
            {"key": more.keys, "line": more.lines, "stamp": more.stamps}, schema=out.keyed.schema
        )
        out.keyed = pl.concat([out.keyed, more_keyed])
        out.absorb(more)


class _ValueMemo:
    """A column converted once per distinct value by a Python column converter, remembered
    across chunks in a polars table: Python sees each distinct value once (``MEMO_LIMIT`` of
    them at most, then it starts over)."""

    def __init__(
        self, convert: ColumnConverter, dtype: type[pl.DataType], kind: str | None = None
    ) -> None:
        self._convert = convert
        self._dtype = dtype
        self._kind = kind  # JSON text of this property kind, else the value itself
        self._table = self._rows([], [])

    def _rows(self, keys: list[Any], values: list[Any]) -> pl.DataFrame:
        return pl.DataFrame(
            {"key": keys, "value": values, "known": [True] * len(keys)},
            schema={"key": pl.String, "value": self._dtype, "known": pl.Boolean},
        )

    def __call__(self, cells: pl.Series, alias: str) -> pl.Series:
        keys = cells.alias("key").to_frame()
        found = keys.join(self._table, on="key", how="left", maintain_order="left")
        new = found.filter(pl.col("key").is_not_null() & pl.col("known").is_null())["key"]
        if new.len():
            distinct = new.unique().to_list()
            column = self._convert(distinct)
            values: list[Any] = list(column.values)
            if self._kind is not None:
                values = list(json_text(self._kind, values))
            for index in (*column.empty, *column.errors):
                values[index] = None  # empty or failed: the row goes to Python
            if self._table.height + len(distinct) > MEMO_LIMIT:
                self._table = self._rows([], [])
            self._table = self._table.vstack(self._rows(distinct, values))
            found = keys.join(self._table, on="key", how="left", maintain_order="left")
        return found.get_column("value").alias(alias)
