"""CSV and JSONL files converted by ``streams._native.csvfast`` (Rust, native/src/csvfast/):
parsed (the ``csv_core`` and ``serde_json`` crates) and converted to change events without
the GIL, a chunk of rows at a time.

Every row is either converted in Rust, to an event that decodes to what the Python converter
(:class:`streams.bootstrap.rows.ChunkConverter`, the reference) makes of it, or handed to that
converter, which builds or rejects it with its line: rows with an empty cell or a removal,
values the Rust checks do not take (see native/src/csvfast/mod.rs), JSONL lines serde_json
cannot read. Columns with few distinct values (booleans, dates, removal flags, modified-at
times) are converted once per distinct value by the Python column converters themselves; Rust
remembers the results. A CSV in another encoding than UTF-8 is decoded and encoded again
before Rust sees it (:meth:`streams.bootstrap.files.CsvSource.blocks`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from streams._native import csvfast
from streams.bootstrap.columns import MEMO_LIMIT, ColumnConverter
from streams.bootstrap.events import json_text
from streams.bootstrap.files import CsvSource, JsonlSource, json_rows
from streams.bootstrap.mapping import BootstrapMapping
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, Prop, RowLimits
from streams.bootstrap.sources import Chunk
from streams.errors import ConfigError

# Slot kinds, as native/src/csvfast/converter.rs numbers them.
_ID, _LINE, _TS, _STRING, _EMAIL, _INT, _FLOAT, _MEMO = range(8)
_KINDS = {"string": _STRING, "email": _EMAIL, "int": _INT, "float": _FLOAT}
_REMOVAL, _MODIFIED = -1, -2
# The first chunks are small and grow to the chunk size: the first is converted before
# anything is produced, and it meets every value its memo columns hold for the first time.
FIRST_ROWS = 1024


class NativeConverter:
    """Reads and converts one file source, chunk after chunk (:meth:`chunks`)."""

    def __init__(
        self,
        mapping: BootstrapMapping,
        source: CsvSource | JsonlSource,
        *,
        job_id: str,
        snapshot_ms: int,
        since_ms: int | None,
        limits: RowLimits,
        memo_limit: int = MEMO_LIMIT,
        index: Any = None,
    ) -> None:
        """``memo_limit``: distinct values a memo column remembers before it starts over;
        ``index``: a ``csvfast.KeyIndex`` that notes the id of every row converted (in the same
        pass, without the GIL)."""
        common: dict[str, Any] = dict(
            job_id=job_id, snapshot_ms=snapshot_ms, since_ms=since_ms, limits=limits
        )
        # The reference, for the rows Rust leaves (its cells as the source has them).
        self.full = ChunkConverter(mapping, source.columns, text_source=source.text, **common)
        delimiter: int | None = None
        if isinstance(source, CsvSource):
            names = source.columns or []
            if len(source.delimiter) != 1 or not source.delimiter.isascii():
                raise ConfigError("csv_delimiter must be one ASCII character")
            delimiter = ord(source.delimiter)
            rows = self.full
        else:
            names = mapping.columns()
            # The Rust converter takes a JSON value only where its text converts alike.
            rows = ChunkConverter(mapping, names, text_source=True, **common)
        field = {name: index for index, name in enumerate(names)}  # the last one wins
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
        self._converter = csvfast.Converter(
            names,
            delimiter,
            tuple(text.encode() for text in rows.template.fragments),
            tuple(slots),
            removal,
            since,
            limits.max_timestamp_ms / 1000,
            limits.max_event_bytes,
            _miss_function(rows, memos, modified),
            memo_limit,
        )
        self._source = source
        self._width = len(names)
        self._index = index

    def chunks(self, size: int) -> Iterator[tuple[Chunk, ChunkOutput]]:
        """Chunks of ``size`` rows at most (the first ones smaller, see :data:`FIRST_ROWS`;
        one ends where the bytes read so far end) and their events."""
        converter, index = self._converter, self._index
        blocks = self._source.blocks()
        take = min(size, FIRST_ROWS)
        ended = False
        while True:
            try:
                converted = converter.convert(take, index)
            except ValueError as exc:
                if not isinstance(self._source, CsvSource) or exc.args[:1] != ("not UTF-8",):
                    raise
                raise self._source.not_text(exc.args[1] - 1, exc) from exc
            keys, payloads, lines, stamps, fallback, bad, skipped, read, last_line = converted
            if not read:
                if ended:
                    return
                data = next(blocks, None)
                ended = data is None
                converter.feed(data or b"", ended)
                continue
            take = min(size, take * 2)
            out = ChunkOutput(
                lines=lines,
                keys=keys,
                payloads=payloads,
                stamps=stamps,
                skipped=skipped,
            )
            rejected = [
                (line, "bad_row", f"{fields} fields, the header has {self._width}")
                for line, fields in bad
            ]
            count = read - len(bad)  # the rows read (bad CSV records are no rows)
            if fallback:
                numbers = [line for line, _ in fallback]
                rows: list[Any] = [row for _, row in fallback]
                if isinstance(self._source, JsonlSource):
                    rows, numbers, more = json_rows(rows, numbers)
                    count -= len(fallback) - len(rows)  # bad and blank JSON lines
                    rejected += more
                out.absorb(self._python(rows, numbers))
            yield Chunk([], [], sorted(rejected), last_line, count), out

    def _python(self, rows: Sequence[Any], lines: Sequence[int]) -> ChunkOutput:
        """Rows the Python converter settles, their ids noted like the Rust converter's."""
        out = self.full.convert(rows, lines)
        if self._index is not None:
            self._index.add(out.keys, out.lines, out.stamps)
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
