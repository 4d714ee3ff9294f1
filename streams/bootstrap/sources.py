"""Snapshot sources: CSV and JSONL files, and a PostgreSQL query read through a server-side cursor.

A file source (:mod:`streams.bootstrap.files`) hands its bytes to the native converter, which
parses them; the database one (:mod:`streams.bootstrap.postgres`) yields :class:`Chunk` s of
rows (tuples, ``columns`` names their positions), streaming. A line that cannot be read as a row
is listed in a chunk's ``bad``, so one bad line never stops a job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

from streams.errors import StreamsError

logger = logging.getLogger(__name__)

_COUNT_CHUNK = 1 << 20


class SourceError(StreamsError):
    """A source cannot be opened or read (not one bad row: the whole source)."""


class Chunk(NamedTuple):
    """Consecutive rows of a source and the lines they came from.

    A file's chunks come converted (:mod:`streams.bootstrap.native`): ``rows`` is then empty,
    ``lines`` is empty too and ``read`` counts the rows read.
    """

    rows: list[Any]
    lines: Sequence[int]  # aligned with rows
    bad: list[tuple[int, str, str]]  # (line, reason, detail) of lines that are not rows
    last_line: int  # the last line the chunk covers: a resumed job continues after it
    read: int | None = None

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.read is None else self.read


class Source(Protocol):
    description: str  # for reports and logs: never a password
    text: bool  # every value is a str (CSV)
    columns: list[str] | None  # known after __enter__; None when rows are dicts

    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def estimate_total(self) -> int | None: ...
    def fingerprint(self) -> str: ...
    def modified_ms(self) -> int | None: ...


def count_lines(path: Path) -> int:
    """Newlines in the file (plus one for an unterminated last line): cheap, for progress."""
    count = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(_COUNT_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
