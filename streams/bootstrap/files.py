"""CSV and JSONL snapshot files, read a chunk of lines at a time and parsed by C code (csv,
``str.split``, orjson) in one call per chunk; line numbers stay exact."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Sequence
from itertools import islice, repeat
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson

from streams.bootstrap.sources import Chunk, SourceError, count_lines
from streams.errors import ConfigError


class _FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        self.columns: list[str] | None = None
        try:
            self._stat = path.stat()
        except OSError as exc:
            raise ConfigError(f"cannot read the source {path}: {exc}") from exc

    def fingerprint(self) -> str:
        stat = self._stat
        raw = f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def modified_ms(self) -> int | None:
        return self._stat.st_mtime_ns // 1_000_000

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


class CsvSource(_FileSource):
    """A CSV file with a header line; line numbers are the file's (the header is line 1)."""

    text = True

    def __init__(self, path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> None:
        super().__init__(path)
        self._delimiter = delimiter
        self._encoding_name = encoding
        # utf-8-sig drops the byte-order mark spreadsheet exports like to write.
        self._encoding = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding

    def estimate_total(self) -> int | None:
        return max(count_lines(self.path) - 1, 0)

    def __enter__(self) -> Self:
        self._handle = self.path.open(newline="", encoding=self._encoding)
        reader = csv.reader(self._handle, delimiter=self._delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(f"{self.path} is empty: a header line is required") from None
        except UnicodeDecodeError as exc:
            raise self._not_text(0, exc) from exc
        except csv.Error as exc:
            raise SourceError(f"{self.path}: cannot read the header: {exc}") from exc
        self.columns = [name.strip() for name in header]
        self._header_lines = reader.line_num
        return self

    def chunks(self, size: int) -> Iterator[Chunk]:
        handle, width = self._handle, len(self.columns or ())
        line = self._header_lines
        try:
            while raw := list(islice(handle, size)):
                rows = self._parse(raw)
                lines: Sequence[int]
                if len(rows) == len(raw) and not _open_record(rows):
                    lines = range(line + 1, line + len(raw) + 1)
                else:  # a quoted field spans lines: find each record's line
                    raw, rows, lines = self._multiline(raw, line)
                bad: list[tuple[int, str, str]] = []
                if set(map(len, rows)) != {width}:
                    rows, lines, bad = _check_width(rows, lines, width)
                line += len(raw)
                yield Chunk(rows, lines, bad, line)
        except UnicodeDecodeError as exc:
            raise self._not_text(line, exc) from exc
        except csv.Error as exc:
            raise SourceError(f"{self.path} after line {line}: {exc}") from exc

    def _not_text(self, line: int, exc: UnicodeDecodeError) -> SourceError:
        return SourceError(
            f"{self.path} is not {self._encoding_name} text (after line {line}: {exc.reason}); "
            'set "encoding" in the mapping'
        )

    def _parse(self, raw: list[str]) -> list[Any]:
        text = "".join(raw)
        if '"' in text or "\r" in text:
            return list(csv.reader(raw, delimiter=self._delimiter))
        # Without quotes a CSV line is its text split at the delimiter (and a third faster).
        return list(map(str.split, map(str.rstrip, raw, repeat("\n")), repeat(self._delimiter)))

    def _multiline(self, raw: list[str], line: int) -> tuple[list[str], list[Any], list[int]]:
        while True:
            rows: list[Any] = []
            lines: list[int] = []
            reader = csv.reader(raw, delimiter=self._delimiter)
            for row in reader:
                rows.append(row)
                lines.append(line + reader.line_num)
            more = list(islice(self._handle, 1000)) if _open_record(rows) else []
            if not more:
                return raw, rows, lines
            raw.extend(more)


def _open_record(rows: list[Any]) -> bool:
    """The last record ends inside a quoted field (its newline was taken into the field)."""
    return bool(rows) and bool(rows[-1]) and rows[-1][-1][-1:] in ("\n", "\r")


def _check_width(
    rows: list[Any], lines: Sequence[int], width: int
) -> tuple[list[Any], list[int], list[tuple[int, str, str]]]:
    kept_rows, kept_lines, bad = [], [], []
    for row, line in zip(rows, lines, strict=True):
        if len(row) == width:
            kept_rows.append(row)
            kept_lines.append(line)
        elif row and row != [""]:  # a blank line is not a record
            bad.append((line, "bad_row", f"{len(row)} fields, the header has {width}"))
    return kept_rows, kept_lines, bad


class JsonlSource(_FileSource):
    """One JSON object per line; blank lines are skipped."""

    text = False

    def estimate_total(self) -> int | None:
        return count_lines(self.path)

    def __enter__(self) -> Self:
        self._handle = self.path.open("rb")
        return self

    def chunks(self, size: int) -> Iterator[Chunk]:
        line = 0
        while raw := list(islice(self._handle, size)):
            lines: Sequence[int]
            bad: list[tuple[int, str, str]] = []
            try:
                rows = list(map(orjson.loads, raw))
            except orjson.JSONDecodeError:
                rows = []
            if len(rows) == len(raw) and set(map(type, rows)) == {dict}:
                lines = range(line + 1, line + len(raw) + 1)
            else:
                rows, lines, bad = _parse_lines(raw, line)
            line += len(raw)
            yield Chunk(rows, lines, bad, line)


def _parse_lines(
    raw: list[bytes], line: int
) -> tuple[list[Any], list[int], list[tuple[int, str, str]]]:
    rows: list[Any] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for number, text in enumerate(raw, line + 1):
        try:
            row = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if text.strip():  # a blank line is not a record
                bad.append((number, "bad_json", f"{exc.msg} at char {exc.pos}"))
            continue
        if type(row) is not dict:
            bad.append((number, "not_an_object", f"line is a {type(row).__name__}"))
            continue
        rows.append(row)
        lines.append(number)
    return rows, lines, bad
