"""CSV and JSONL snapshot files, read a chunk of lines at a time and parsed by C code (csv,
``str.split``, orjson) in one call per chunk; line numbers stay exact."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator, Sequence
from itertools import islice, repeat
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson

from streams.bootstrap.extension import csvfast as _csvfast
from streams.bootstrap.hints import encoding_hint
from streams.bootstrap.sources import Chunk, SourceError, count_lines
from streams.codecs.integers import loads_exact, may_hold_wide_integer
from streams.errors import ConfigError

READ_BYTES = 1 << 22
# Block chunks start this small and double up to the chunk size: the first chunk is converted
# before anything is produced, and it meets every value its memo columns hold for the first time.
FIRST_BLOCK_LINES = 1024
# What _scan_block finds in a block (the numbers of native/src/csvfast/mod.rs's SCAN_* flags).
QUOTE, LONE_CR, CRLF, NOT_UTF8 = 1, 2, 4, 8


class _FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        self.columns: list[str] | None = None
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

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


class CsvSource(_FileSource):
    """A CSV file with a header line; line numbers are the file's (the header is line 1).

    Files in an ASCII-compatible encoding are read as bytes, a chunk of lines at a time, and
    decoded per chunk. With ``blocks`` set (the columnar converter does), a chunk whose lines
    are plain (UTF-8, no quotes, no carriage return but in CRLF line ends) is handed over as
    :attr:`Chunk.block`, with lines of the wrong width already reported; any other chunk is
    parsed here as before. Line numbers are the same either way.
    """

    text = True

    def __init__(self, path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> None:
        super().__init__(path)
        self._delimiter = delimiter
        self._encoding_name = encoding
        # utf-8-sig drops the byte-order mark spreadsheet exports like to write.
        self._encoding = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding
        self._ascii_compatible = _ascii_compatible(encoding)
        self._utf8 = self._ascii_compatible and codecs.lookup(encoding).name == "utf-8"
        self._delimiter_byte = delimiter.encode() if delimiter.isascii() else None
        self._bytes = False  # the handle is binary
        self.delimiter = delimiter
        self.blocks = False

    def estimate_total(self) -> int | None:
        return max(count_lines(self.path) - 1, 0)

    @property
    def can_block(self) -> bool:
        """Plain chunks can come as blocks (UTF-8, a one-byte delimiter, read as bytes)."""
        return self._bytes and self._utf8 and self._delimiter_byte is not None

    def __enter__(self) -> Self:
        self._handle: IO[Any] = self.path.open(newline="", encoding=self._encoding)
        reader = csv.reader(self._handle, delimiter=self._delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise ConfigError(f"{self.path} is empty: a header line is required") from None
        except UnicodeDecodeError as exc:
            raise self._not_text(0, exc) from exc
        except csv.Error as exc:
            raise ConfigError(f"{self.path}: cannot read the header: {exc}") from exc
        self.columns = [name.strip() for name in header]
        self._header_lines = reader.line_num
        if self._ascii_compatible:
            self._read_bytes_after_header()
        return self

    def _read_bytes_after_header(self) -> None:
        binary = self.path.open("rb")
        header = b"".join(islice(binary, self._header_lines))
        if b"\r" in header.replace(b"\r\n", b""):  # a lone CR ends a text line, not a byte line
            binary.close()
            return
        self._handle.close()
        self._handle = binary
        self._lines = ByteLines(binary)
        self._bytes = True

    def chunks(self, size: int) -> Iterator[Chunk]:
        """Chunks of ``size`` lines; blocks start smaller (see :data:`FIRST_BLOCK_LINES`)."""
        line = self._header_lines
        take = min(size, FIRST_BLOCK_LINES) if self.blocks else size
        try:
            while True:
                if self._bytes:
                    joined, count = self._lines.take_bytes(take)
                    take = min(size, take * 2)
                    if not count:
                        return
                    if self.blocks and self.can_block:
                        block = self._block(joined, count, line)
                        if block is not None:
                            line = block.last_line
                            yield block
                            continue
                    raw = self._decode(joined)
                else:
                    raw = list(islice(self._handle, size))
                    if not raw:
                        return
                chunk = self._parse_chunk(raw, line)
                line = chunk.last_line
                yield chunk
        except UnicodeDecodeError as exc:
            raise self._not_text(line, exc) from exc
        except csv.Error as exc:
            raise SourceError(f"{self.path} after line {line}: {exc}") from exc

    def _block(self, joined: bytes, count: int, line: int) -> Chunk | None:
        """The ``count`` lines ``joined`` as a block chunk (CRLF ends made LF), or None when they
        hold quotes or a carriage return outside a CRLF line end."""
        width = len(self.columns or ())
        delimiter = self._delimiter_byte or b","  # can_block: a one-byte delimiter
        flags, odd = _scan_block(joined, delimiter, width)
        if flags & (QUOTE | LONE_CR):
            return None
        if flags & CRLF:  # CRLF line ends (spreadsheet exports) are fine, any other CR is not
            joined = joined.replace(b"\r\n", b"\n")
            flags, odd = _scan_block(joined, delimiter, width)
        if flags & NOT_UTF8:
            joined.decode()  # raises the UnicodeDecodeError chunks() reports
        last = line + count
        if not odd:
            return Chunk([], range(line + 1, last + 1), [], last, joined)
        good: list[bytes] = []
        lines: list[int] = []
        bad: list[tuple[int, str, str]] = []
        fields = dict(odd)
        for index, text in enumerate(joined.split(b"\n")[:count]):
            number = line + 1 + index
            if index not in fields:
                good.append(text)
                lines.append(number)
            elif fields[index]:  # a blank line (0) is not a record
                detail = f"{fields[index]} fields, the header has {width}"
                bad.append((number, "bad_row", detail))
        return Chunk([], lines, bad, last, b"\n".join(good) + b"\n" if good else b"")

    def _decode(self, joined: bytes) -> list[str]:
        """Bytes of whole lines to text lines, split where a text handle would split them."""
        return list(io.StringIO(joined.decode(self._encoding_name), newline=""))

    def _more_lines(self, count: int) -> list[str]:
        if not self._bytes:
            return list(islice(self._handle, count))
        return self._decode(self._lines.take_bytes(count)[0])

    def _parse_chunk(self, raw: list[str], line: int) -> Chunk:
        width = len(self.columns or ())
        rows = self._parse(raw)
        lines: Sequence[int]
        if len(rows) == len(raw) and not _open_record(rows):
            lines = range(line + 1, line + len(raw) + 1)
        else:  # a quoted field spans lines: find each record's line
            raw, rows, lines = self._multiline(raw, line)
        bad: list[tuple[int, str, str]] = []
        if set(map(len, rows)) != {width}:
            rows, lines, bad = _check_width(rows, lines, width)
        return Chunk(rows, lines, bad, line + len(raw))

    def _not_text(self, line: int, exc: UnicodeDecodeError) -> ConfigError:
        """A configuration error, also past the first row: a resume would meet it again.
        ``line`` is the last line before the bytes decoded, where a byte chunk starts (and the
        header's first read), so the line of the failing byte is known then."""
        where = f"after line {line}"
        if self._bytes or line == 0:
            before = bytes(exc.object[: exc.start]).count(b"\n")
            where = f"line {line + 1 + before}"
        return ConfigError(
            f"{self.path} is not {self._encoding_name} text ({where}: {exc.reason})"
            + encoding_hint(exc)
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
            more = self._more_lines(1000) if _open_record(rows) else []
            if not more:
                return raw, rows, lines
            raw.extend(more)


class ByteLines:
    """The lines of a binary file read in large blocks: one system call (and one hand-over of
    the GIL) per block, not per line, so a reader thread does not queue behind a busy thread for
    every few kilobytes; lines are found in Rust (``csvfast.line_end``) when it is built."""

    def __init__(self, handle: IO[bytes], block_bytes: int = READ_BYTES) -> None:
        self._handle = handle
        self._block_bytes = block_bytes
        self._buffer = b""
        self._pos = 0  # where the lines not taken yet start
        self._eof = False

    def take_bytes(self, count: int) -> tuple[bytes, int]:
        """Up to ``count`` lines as the file has them, each with its newline (only the file's
        last line may have none), and how many lines they are."""
        end, found = _line_end(self._buffer, self._pos, count)
        while found < count and not self._eof:
            data = self._handle.read(self._block_bytes)
            if not data:
                self._eof = True
                break
            self._buffer = self._buffer[self._pos :] + data
            end -= self._pos
            self._pos = 0
            more_end, more = _line_end(self._buffer, end, count - found)
            end, found = more_end, found + more
        if found < count and self._eof and end < len(self._buffer):
            end, found = len(self._buffer), found + 1  # the last line, without a newline
        data = self._buffer[self._pos : end]
        self._pos = end
        return data, found


def _line_end(buffer: bytes, pos: int, count: int) -> tuple[int, int]:
    """The position after the ``count``-th newline from ``pos`` (or after the last one there is)
    and how many newlines that is."""
    if _csvfast is not None:
        found: tuple[int, int] = _csvfast.line_end(buffer, pos, count)
        return found
    end = pos
    for found_lines in range(count):
        newline = buffer.find(b"\n", end)
        if newline < 0:
            return end, found_lines
        end = newline + 1
    return end, count


def _scan_block(block: bytes, delimiter: bytes, width: int) -> tuple[int, list[tuple[int, int]]]:
    """What keeps ``block`` from being read as plain lines (QUOTE, LONE_CR, CRLF, NOT_UTF8) and,
    when nothing about its line ends does, (index, fields) of its lines that are blank (0
    fields) or of another width. In Rust, without the GIL, when the kernel is built."""
    if _csvfast is not None:
        found: tuple[int, list[tuple[int, int]]] = _csvfast.scan_block(block, delimiter[0], width)
        return found
    flags = QUOTE if b'"' in block else 0
    crs = block.count(b"\r")
    if crs:
        crlfs = block.count(b"\r\n")
        flags |= (CRLF if crlfs else 0) | (LONE_CR if crs != crlfs else 0)
    if not block.isascii():
        try:
            block.decode()
        except UnicodeDecodeError:
            flags |= NOT_UTF8
    if flags & (QUOTE | LONE_CR | CRLF):
        return flags, []
    lines = block.split(b"\n") if block else []
    if block.endswith(b"\n"):
        lines.pop()
    counts = map(bytes.count, lines, repeat(delimiter))
    return flags, [
        (index, count + 1 if text else 0)
        for index, (text, count) in enumerate(zip(lines, counts, strict=True))
        if not text or count != width - 1
    ]


def block_rows(block: bytes, delimiter: str) -> list[list[str]]:
    """The rows of a :attr:`Chunk.block`, parsed in Python (what the columnar path checks)."""
    lines = block.decode().split("\n")
    if lines[-1] == "":
        lines.pop()
    return [text.split(delimiter) for text in lines]


def _ascii_compatible(encoding: str) -> bool:
    """Byte lines of the file are its text lines (not so for UTF-16 and UTF-32)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    stateful_or_wide = ("utf-16", "utf-32", "utf-7", "iso2022", "hz")
    return "\n".encode(name) == b"\n" and not name.startswith(stateful_or_wide)


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
                if may_hold_wide_integer(b"".join(raw)):
                    rows = [_exact(row, text) for row, text in zip(rows, raw, strict=True)]
            else:
                rows, lines, bad = _parse_lines(raw, line)
            line += len(raw)
            yield Chunk(rows, lines, bad, line)


def _exact(row: Any, text: bytes) -> Any:
    """The row with exact integers, where orjson may have read one out of range as a float
    (-2^63-1 as -2^63): the int columns then refuse it (``integer_out_of_range``)."""
    return loads_exact(text) if may_hold_wide_integer(text) else row


def _parse_lines(
    raw: list[bytes], line: int
) -> tuple[list[Any], list[int], list[tuple[int, str, str]]]:
    rows: list[Any] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for number, text in enumerate(raw, line + 1):
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
