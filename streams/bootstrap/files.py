"""CSV and JSONL snapshot files: the header of a CSV (Python's csv module), then the file's
bytes a block at a time for the native converter (:mod:`streams.bootstrap.native`), which
parses them; JSONL lines it cannot read come back to :func:`json_rows`."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson

from streams.bootstrap.hints import encoding_hint
from streams.bootstrap.sources import count_lines
from streams.codecs.integers import loads_exact
from streams.errors import ConfigError

READ_BYTES = 1 << 22


class _FileSource:
    text = True  # the CSV kind: cells are text
    columns: list[str] | None = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        try:
            self._stat = path.stat()
        except OSError as exc:
            raise ConfigError(f"cannot read the source {path}: {exc.strerror or exc}") from exc

    def fingerprint(self) -> str:
        stat = self._stat
        raw = f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def modified_ms(self) -> int | None:
        return self._stat.st_mtime_ns // 1_000_000

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()

    def blocks(self) -> Iterator[bytes]:
        """The whole file, :data:`READ_BYTES` at a time."""
        with self.path.open("rb") as handle:
            while data := handle.read(READ_BYTES):
                yield data


class CsvSource(_FileSource):
    """A CSV file with a header line; line numbers are the file's (the header is line 1), a
    record's the line it ends on. Blocks come as UTF-8 whatever the file's ``encoding``: other
    encodings are decoded and encoded again on the way (the slower path, in C); UTF-8 is
    checked by the converter."""

    def __init__(self, path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> None:
        super().__init__(path)
        self.delimiter = delimiter
        self._encoding_name = encoding
        # utf-8-sig drops the byte-order mark spreadsheet exports like to write.
        self._encoding = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding
        try:
            codecs.lookup(self._encoding)
        except LookupError as exc:
            raise ConfigError(f"unknown encoding {encoding!r} in the mapping") from exc

    def estimate_total(self) -> int | None:
        return max(count_lines(self.path) - 1, 0)

    def __enter__(self) -> Self:
        self._handle: IO[Any] = self.path.open(newline="", encoding=self._encoding)
        reader = csv.reader(self._handle, delimiter=self.delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise ConfigError(f"{self.path} is empty: a header line is required") from None
        except UnicodeDecodeError as exc:  # in the first block the handle decoded
            raise self.not_text(exc.object[: exc.start].count(b"\n"), exc) from exc
        except csv.Error as exc:
            raise ConfigError(f"{self.path}: cannot read the header: {exc}") from exc
        self.columns = [name.strip() for name in header]
        self._handle.close()
        return self

    def blocks(self) -> Iterator[bytes]:
        if self._encoding == "utf-8-sig":  # the converter checks UTF-8 itself
            yield from super().blocks()
            return
        decoder = codecs.getincrementaldecoder(self._encoding)()
        line = 0
        for data in super().blocks():
            try:
                yield decoder.decode(data).encode()
            except UnicodeDecodeError as exc:
                raise self.not_text(line + data.count(b"\n", 0, exc.start), exc) from exc
            line += data.count(b"\n")
        try:
            yield decoder.decode(b"", final=True).encode()
        except UnicodeDecodeError as exc:
            raise self.not_text(line, exc) from exc

    def not_text(self, line: int, exc: Exception) -> ConfigError:
        """A configuration error, also past the first row (a resume would meet it again), with
        the ``encoding`` to try; ``line`` is the number of lines before the one not text."""
        if not isinstance(exc, UnicodeDecodeError):  # the converter's own UTF-8 check
            exc = self._decode_error(line) or exc
        if isinstance(exc, UnicodeDecodeError):
            reason, hint = exc.reason, encoding_hint(exc)
        else:
            reason, hint = "invalid UTF-8", '; set "encoding" in the mapping'
        return ConfigError(
            f"{self.path} is not {self._encoding_name} text (line {line + 1}: {reason}){hint}"
        )

    def _decode_error(self, line: int) -> UnicodeDecodeError | None:
        """The error of decoding the file's line ``line + 1``, read again (only on failure)."""
        with self.path.open("rb") as handle:
            for number, text in enumerate(handle):
                if number == line:
                    try:
                        text.decode(self._encoding)
                    except UnicodeDecodeError as exc:
                        return exc
                    return None
        return None


class JsonlSource(_FileSource):
    """One JSON object per line; blank lines are skipped. Bytes go to the converter as they
    are: a line that is not UTF-8 is one bad line, not a bad file."""

    text = False

    def estimate_total(self) -> int | None:
        return count_lines(self.path)


def json_rows(
    raw: Sequence[bytes], numbers: Sequence[int]
) -> tuple[list[Any], list[int], list[tuple[int, str, str]]]:
    """The rows of JSONL lines (exact integers), and the lines that are none, with their
    reason; blank lines are neither."""
    rows: list[Any] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for number, text in zip(numbers, raw, strict=True):
        try:
            row = loads_exact(text)
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
