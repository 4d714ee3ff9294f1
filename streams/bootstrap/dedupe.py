"""Duplicate ids inside one snapshot, found in Rust (``streams._native.csvfast.KeyIndex``), not
per row in Python.

Only the report needs this: every valid row is produced and the processor's merge keeps the
newest value per property anyway. Per id the newest row wins (by update time, else the later
line) and every other row is reported against it. Each row is looked up in a hash table as it
comes (the native converter notes its rows itself, in its GIL-free pass), and the losers are
reported at the end; memory is one small record per distinct id (about 40 bytes; a dict of
Python objects took three times that). Reports come only from :meth:`DuplicateIndex.finish`,
so rows can be added on the bootstrap's reader thread and reported on the main one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streams._native import csvfast

Report = Callable[[int, int, bool], None]
"""``report(line, kept_line, same_time)``: ``line`` lost to ``kept_line``."""


class DuplicateIndex:
    """The newer row wins (by update time, else the later line); the other is reported.

    Rows may be added on one thread and :meth:`finish` called on another, after the last add:
    every report comes from ``finish``.
    """

    def __init__(self, report: Report) -> None:
        self._report = report
        self.native: Any = csvfast.KeyIndex()
        """The Rust index, for the native converter to fill."""

    def add(
        self, keys: Sequence[bytes], stamps: Sequence[float] | None, lines: Sequence[int]
    ) -> None:
        self.native.add(keys, lines, stamps)

    def finish(self) -> None:
        """Report every row that lost, by line."""
        for line, kept_line, same in self.native.losses():
            self._report(line, kept_line, same)
