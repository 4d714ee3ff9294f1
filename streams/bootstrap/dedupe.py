"""Duplicate ids inside one snapshot, found in Rust or settled in polars, not per row in Python.

Only the report needs this: every valid row is produced and the processor's merge keeps the
newest value per property anyway. Per id the newest row wins (by update time, else the later
line) and every other row is reported against it. With the Rust kernel built
(``streams._native.csvfast.KeyIndex``) each row is looked up in its hash table as it comes, and
the losers are reported at the end; else chunks hand over their (key, line, update time)
columns, settled in polars when enough have piled up and at the end, a settled id keeping only
its winner. Either way memory is one small record per distinct id (about 40 bytes; a dict of
Python objects took three times that). Reports come only from :meth:`DuplicateIndex.finish`, so
rows can be added on the bootstrap's reader thread (the Rust index lets the GIL go while it
hashes) and reported on the main one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from streams.bootstrap.extension import csvfast as _csvfast

if TYPE_CHECKING:
    from streams.bootstrap.rows import ChunkOutput

Report = Callable[[int, int, bool], None]
"""``report(line, kept_line, same_time)``: ``line`` lost to ``kept_line``."""


SETTLE_ROWS = 2_000_000
SCHEMA = {"key": pl.Binary, "line": pl.Int64, "stamp": pl.Float64}


class DuplicateIndex:
    """The newer row wins (by update time, else the later line); the other is reported.

    Rows may be added on one thread and :meth:`finish` called on another, after the last add:
    every report comes from ``finish``.
    """

    def __init__(
        self, report: Report, *, settle_rows: int = SETTLE_ROWS, native: bool | None = None
    ) -> None:
        """``native``: the Rust index (default: when built) or polars."""
        self._report = report
        if native is None:
            native = _csvfast is not None
        if native and _csvfast is None:
            raise RuntimeError("streams._native.csvfast is not built")
        self._native: Any = _csvfast.KeyIndex() if native and _csvfast is not None else None
        self._settle_rows = settle_rows
        self._frames: list[pl.DataFrame] = []
        self._pending = 0  # rows added since the last settling
        self._lost: list[tuple[int, int, bool]] = []  # settled losses, reported by finish()

    def add(
        self, keys: Sequence[bytes], stamps: Sequence[float] | None, lines: Sequence[int]
    ) -> None:
        if self._native is not None:
            self._native.add(keys, lines, stamps)
            return
        frame = pl.DataFrame(
            {"key": list(keys), "line": list(lines)}, schema={"key": pl.Binary, "line": pl.Int64}
        )
        stamp = (
            pl.Series("stamp", stamps, dtype=pl.Float64)
            if stamps is not None
            else pl.lit(None, dtype=pl.Float64).alias("stamp")
        )
        self._add_frame(frame.with_columns(stamp))

    @property
    def native(self) -> Any:
        """The Rust index (``csvfast.KeyIndex``), for the Rust converter to fill, or None."""
        return self._native

    def add_output(self, out: ChunkOutput) -> None:
        """The rows a converter will produce: its polars frame of them when it made one."""
        if out.indexed:
            return
        if out.keyed is not None and self._native is None:
            self._add_frame(out.keyed)
        else:
            self.add(out.keys, out.stamps, out.lines)

    def _add_frame(self, frame: pl.DataFrame) -> None:
        """``frame``: columns key (binary), line (int) and stamp (float, null without one)."""
        if frame.height:
            self._frames.append(frame.select(list(SCHEMA)))
            self._pending += frame.height
            if self._pending >= self._settle_rows:
                self._settle()

    def finish(self) -> None:
        """Report every row that lost, by line."""
        if self._native is not None:
            lost = self._native.losses()
        else:
            self._settle()
            lost, self._lost = sorted(self._lost), []
        for line, kept_line, same in lost:
            self._report(line, kept_line, same)

    def _settle(self) -> None:
        self._pending = 0
        if not self._frames:
            return
        rows = pl.concat(self._frames, how="vertical") if len(self._frames) > 1 else self._frames[0]
        repeated = rows.select(pl.col("key").is_duplicated()).to_series()
        if not repeated.any():
            self._frames = [rows]
            return
        ranked = rows.filter(repeated).sort(["key", "stamp", "line"], nulls_last=False)
        winners = ranked.unique("key", keep="last", maintain_order=True)
        kept = winners.select("key", kept_line="line", kept_stamp="stamp")
        lost = (
            ranked.join(kept, on="key")
            .filter(pl.col("line") != pl.col("kept_line"))
            .select(
                "line",
                "kept_line",
                same=(pl.col("stamp") == pl.col("kept_stamp")).fill_null(True),
            )
            .sort("line")
        )
        self._lost += lost.iter_rows()
        settled = pl.concat([rows.filter(~repeated), winners], how="vertical")
        self._frames = [settled]
