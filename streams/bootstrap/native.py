"""Plain CSV chunks converted by ``streams._native.csvfast`` (Rust, native/src/csvfast/): the
fastest path.

The package's install builds it; a checkout whose Rust kernel was not built runs without it and
the bootstrap uses the polars converter (:mod:`.frames`) instead. Every row is either converted
in Rust, to exactly the bytes the Python converter (:class:`streams.bootstrap.rows.ChunkConverter`)
makes of it, or handed to that converter, which builds or rejects it with its line. Columns with
few distinct values (booleans, dates, removal flags, modified-at times) are converted once per
distinct value by the Python column converters themselves; Rust remembers the results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streams.bootstrap.columns import MEMO_LIMIT, ColumnConverter
from streams.bootstrap.events import json_text
from streams.bootstrap.extension import csvfast as _csvfast
from streams.bootstrap.mapping import BootstrapMapping
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, Prop, RowLimits
from streams.bootstrap.sources import Chunk

# Slot kinds, as native/src/csvfast/converter.rs numbers them.
_ID, _LINE, _TS, _STRING, _EMAIL, _INT, _FLOAT, _MEMO = range(8)
_KINDS = {"string": _STRING, "email": _EMAIL, "int": _INT, "float": _FLOAT}
_REMOVAL, _MODIFIED = -1, -2


def available() -> bool:
    """The Rust kernel was built with ``csvfast`` and imports."""
    return _csvfast is not None


class NativeConverter:
    """Converts :attr:`Chunk.block` chunks in Rust, any other chunk (and odd rows) in Python."""

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
        memo_limit: int = MEMO_LIMIT,
        index: Any = None,
    ) -> None:
        """``memo_limit``: distinct values a memo column remembers before it starts over;
        ``index``: a ``csvfast.KeyIndex`` that notes the id of every row converted (in the same
        pass, without the GIL: see :attr:`DuplicateIndex.native`)."""
        if _csvfast is None:
            raise RuntimeError("streams._native.csvfast is not built")
        self.full = ChunkConverter(
            mapping,
            columns,
            job_id=job_id,
            snapshot_ms=snapshot_ms,
            since_ms=since_ms,
            limits=limits,
            text_source=True,
        )
        rows = self.full
        field = {name: index for index, name in enumerate(columns)}  # the last one wins
        self._delimiter = delimiter
        slots: list[tuple[int, int]] = [(_ID, field[rows.id_column]), (_LINE, 0)]
        if rows.ts_column is not None:
            slots.append((_TS, field[rows.ts_column]))
        memos = {}  # slot -> property, for memo slots
        for prop in rows.props:
            if prop.kind not in _KINDS:  # bool, datetime: few distinct values
                memos[len(slots)] = prop
            slots.append((_KINDS.get(prop.kind, _MEMO), field[prop.column]))
        removal = None
        if rows.removal_column is not None:
            removal = (field[rows.removal_column], rows.is_removal(""))
        since = None
        modified = None
        if rows.since is not None:
            name, modified, earliest = rows.since
            since = (field[name], earliest)
        self._arguments: dict[str, Any] = dict(
            delimiter=ord(delimiter),
            width=len(columns),
            fragments=tuple(text.encode() for text in rows.template.fragments),
            slots=tuple(slots),
            removal=removal,
            since=since,
            latest=limits.max_timestamp_ms / 1000,
            max_bytes=limits.max_event_bytes,
            miss=_miss_function(rows, memos, modified),
            memo_limit=memo_limit,
        )
        self._converter = _csvfast.Converter(**self._arguments)
        self._index = index

    def convert_chunk(self, chunk: Chunk) -> ChunkOutput:
        if chunk.block is None:
            return self._python(chunk.rows, chunk.lines)
        if not chunk.lines:
            return ChunkOutput(indexed=self._index is not None)
        keys, payloads, lines, stamps, fallback, skipped = self._converter.convert(
            chunk.block, chunk.lines, self._index
        )
        out = ChunkOutput(
            lines=lines,
            keys=keys,
            payloads=payloads,
            stamps=stamps,
            indexed=self._index is not None,
        )
        out.skipped = skipped
        if fallback:
            delimiter = self._delimiter
            out.absorb(
                self._python(
                    [raw.decode().split(delimiter) for _, raw in fallback],
                    [line for line, _ in fallback],
                )
            )
        return out

    def _python(self, rows: Sequence[Sequence[Any]], lines: Sequence[int]) -> ChunkOutput:
        """Rows the Python converter settles, their ids noted like the Rust converter's."""
        out = self.full.convert(rows, lines)
        if self._index is not None:
            self._index.add(out.keys, out.lines, out.stamps)
            out.indexed = True
        return out


def _miss_function(
    rows: ChunkConverter, memos: dict[int, Prop], modified: ColumnConverter | None
) -> Callable[[int, list[bytes]], list[Any]]:
    """What Rust remembers for cells it has not seen, converted a column at a time (a plain
    function: the Rust converter holds it, and a method would hold the converter in a cycle).
    None: the row goes to Python."""

    def miss(which: int, cells: list[bytes]) -> list[Any]:
        texts = [cell.decode() for cell in cells]
        if which == _REMOVAL:
            return [rows.is_removal(text) for text in texts]
        if which == _MODIFIED:
            assert modified is not None
            column = modified(texts)
        else:
            column = memos[which].convert(texts)
        bad = {*column.empty, *column.errors}
        if which == _MODIFIED:
            return [None if i in bad else float(v) for i, v in enumerate(column.values)]
        kind = memos[which].kind
        return [
            None if i in bad else text.encode()
            for i, text in enumerate(json_text(kind, column.values))
        ]

    return miss
