"""Duplicate ids inside one snapshot, found chunk by chunk with C-level dict operations.

Only the report needs this: every valid row is produced and the processor's merge keeps the
newest value per property anyway. Memory is one entry per distinct id (the id, its winning
row's line and, with an update_timestamp column, its update time): ~100-150 bytes per id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import compress
from typing import Any

Report = Callable[[int, int, bool], None]
"""``report(line, kept_line, same_time)``: ``line`` lost to ``kept_line``."""


class DuplicateIndex:
    """The newer row wins (by update time, else the later line); the other is reported."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._seen: dict[str, Any] = {}  # id -> line, or (stamp, line) with per-row stamps

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, ids: Sequence[str], stamps: Sequence[float] | None, lines: Sequence[int]) -> None:
        seen = self._seen
        entries: Sequence[Any] = lines if stamps is None else list(zip(stamps, lines, strict=True))
        previous = list(map(seen.get, ids))
        size = len(seen)
        seen.update(zip(ids, entries, strict=True))
        fresh = previous.count(None)
        if fresh == len(ids) and len(seen) == size + len(ids):
            return  # the common chunk: every id new, none twice
        # Settle the repeated ids row by row (only those rows), from what was seen before.
        # Entries are never falsy (lines start at 1), so compress() picks the seen ones.
        repeated = set(compress(ids, previous))
        if len(seen) - size < fresh:
            repeated.update(key for key, count in Counter(ids).items() if count > 1)
        winners = dict(zip(compress(ids, previous), filter(None, previous), strict=True))
        for index in compress(range(len(ids)), map(repeated.__contains__, ids)):
            key, entry = ids[index], entries[index]
            old = winners.get(key)
            if old is None:
                winners[key] = entry
            else:  # (stamp, line) or line: the newer wins, else the later
                kept, lost = (entry, old) if entry >= old else (old, entry)
                self._report(_line(lost), _line(kept), stamps is None or kept[0] == lost[0])
                winners[key] = kept
        seen.update(winners)


def _line(entry: Any) -> int:
    return entry if type(entry) is int else entry[1]
