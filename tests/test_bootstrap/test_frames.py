"""The fast paths, columnar (polars) and native (Rust), make exactly what the Python path makes of
the same file.

Same events byte for byte, same keys, update times, rejections with their lines and reasons,
bad lines, skipped rows, removals and duplicates: whatever the cells hold (odd numbers, spaces,
escapes, control characters, quotes, empty cells, short and long lines, blank lines) and however
the file is cut into chunks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.bootstrap.dedupe import DuplicateIndex
from streams.bootstrap.files import ByteLines, CsvSource
from streams.bootstrap.frames import FrameConverter
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.native import NativeConverter, available
from streams.bootstrap.rows import ChunkConverter, RowLimits
from streams.bootstrap.sources import Chunk

SNAPSHOT_MS = 1_763_800_000_123
SINCE_MS = 1_763_650_000_000  # 2025-11-20T14:46:40Z
LIMITS = RowLimits(max_timestamp_ms=1_800_000_000_000, max_event_bytes=600)
HEADER = ["id", "name", "email", "age", "score", "flag", "born", "status", "modified", "updated"]
PROPERTIES = [
    {"from_column": "name", "to_property": "name", "type": "string"},
    {"from_column": "email", "to_property": "email", "type": "email"},
    {"from_column": "age", "to_property": "age", "type": "int"},
    {"from_column": "score", "to_property": "score", "type": "float"},
    {"from_column": "flag", "to_property": "flag", "type": "bool"},
    {"from_column": "born", "to_property": "born", "type": "datetime"},
]
MAPPINGS: dict[str, dict[str, Any]] = {
    "plain": {"ids": [{"from_column": "id"}], "properties": PROPERTIES},
    "full": {
        "ids": [{"from_column": "id"}],
        "properties": PROPERTIES,
        "update_timestamp": {"from_column": "updated"},
        "constant_columns": [{"to_property": "origin", "value": "crm"}],
        "timezone": "Europe/Bratislava",
        "removal": {"column": "status", "values": ["OPT_OUT", "Gelöscht"], "as": "property"},
        "modified_at_column": "modified",
        "empty_values": "null",
    },
    "deletes": {
        "ids": [{"from_column": "id"}],
        "properties": PROPERTIES[:3],
        "removal": {"column": "status", "values": ["removed"], "as": "delete"},
    },
}


def _decimal(digits: int, places: int, padding: int) -> str:
    """``digits`` with a decimal point ``places`` from the right and ``padding`` extra leading
    zeros: the plain numbers a file may hold, trailing zeros and all."""
    text = "0" * padding + str(abs(digits)).rjust(places + 1, "0")
    if places:
        text = text[:-places] + "." + text[-places:]
    return "-" + text if digits < 0 else text


_ODD = ["", " ", "x\\y", "tab\there", "lone\rcr", "nul\x00", "bell\x07", "é", "日本", "\u2028"]
_ODD += ["a;b", "\x1f", "abcdefg\\h", "abcdefghijk\x01", "abc\\defghijklmnop", "ab\x1fcd"]
# Per column: values the columnar path takes and odd ones (most of which it hands to Python).
GOOD = {
    "id": [f"c-{n}" for n in range(12)],
    "name": ["Ada", "Zoë", "O'Neil", "  pad  ", "日本", "N" * 400],
    "email": ["a@example.com", "first.last+tag@sub.example.co", "x@b-c.example"],
    "age": ["5", "-12", "0", str(2**63 - 1), str(-(2**63))],
    "score": [
        *("1.5", "549.37", "120.0", "-0.0", "0.0001", "9.999e+15", "5e-05", "-0.00012"),
        *("007.50", "100", "0.00010", "-0.000", "123456789012345", "12345678901234.5"),
        *("0.000123456789012345", "825.60", "-000.5"),
    ],
    "flag": ["true", "FALSE", "Yes", "n", "1", "0"],
    "born": ["1985-03-02", "2024-02-29", "1880-06-01", "9999-12-31", "0001-01-01"],
    "status": ["ACTIVE", "inactive"],
    "modified": ["2026-11-20T00:00:00Z", "1763700000", "2026-11-20"],
    "updated": [
        *("1763700000", "1763700000.5", "0", "0.0", "1e-05", "1790000000", "1763700000.100"),
        *("01763700000", "-0", "1763700000.12345"),
    ],
}
ODD = {
    "id": _ODD,
    "name": _ODD,
    "email": [
        *("", " b@example.org", "bad", "x@y", "a..b@example.com", "ü@example.com", "a" * 99),
        *("a@" + "b" * 64 + ".com", "a@" + "b" * 63 + ".com", "a@-b.com", "a@b-.com", "a@b..com"),
        *("@b.com", "a@b.com.", "a@.b.com", "a b@c.com", "a@b@c.com", "a@" + "b." * 130 + "cd"),
    ],
    "age": [str(2**63), "", "+5", "007", "1_000", " 3", "1.0", "1.5", "٣", "-0", "1e3", "x"],
    "score": [
        *("", "1", "100", "1e16", "1e-05", ".5", "5.", "1_0", " 2", "nan", "inf", "-Infinity"),
        *("0x10", "1e400", "12345678901234567890", "1,5", "1.5e-06", "1e+16"),
        *("1234567890123456", "0.00001", "99999999999999999", "1.00000000000000000001"),
        *("0.1000000000000000055511151231257827", "1" * 70, "-", "1.", "-.5", "--1"),
        *("9007199254740993", "1.0000000000000001", "0.12345678901234567"),
    ],
    "flag": ["tRuE", " t ", "maybe", ""],
    "born": [
        *("1985-3-2", "1985-03-02T10:00:00", "1985-03-02T10:00:00+02:00", "500000000", ""),
        *("-86400.5", "x", "2020-03-29T02:30:00", "2023-02-29", "0000-01-01"),
    ],
    "status": ["OPT_OUT", " opt_out ", "gelöscht", "removed", ""],
    "modified": ["2025-11-01T00:00:00Z", "", "bad", "1600000000", "2025-11-20T14:00:00"],
    "updated": [
        *("", "-1", "1763700000.123456", "2026-11-20T10:00:00", "1900000000", " 5"),
        *("1_763_700_000", "nan", "17637000000000", "inf", "1e-07"),
    ],
}
MORE_GOOD = {
    # Any text a plain CSV cell can hold: control bytes, quotes' neighbours, backslashes and
    # multi-byte characters at every offset of the Rust checks' 8-byte words.
    "name": st.text(
        st.sampled_from("a \\\x00\x1f\x7f'é日")
        | st.characters(codec="utf-8", exclude_characters=',\n\r"'),
        min_size=1,
        max_size=24,
    ),
    "email": st.emails()
    | st.from_regex(r"[a-z0-9.+-]{1,12}@[a-z0-9-]{0,9}(\.[a-z0-9-]{0,6}){0,3}", fullmatch=True),
    "age": st.integers(-(2**63), 2**63 - 1).map(str),
    "score": st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.floats(-1e-3, 1e-3).map(repr)
    | st.decimals(-(10**6), 10**6, places=2).map(str)
    | st.builds(_decimal, st.integers(-(10**17), 10**17), st.integers(0, 19), st.integers(0, 2)),
    "born": st.dates().map(str),
    "updated": st.floats(0, 1.79e9).map(repr)
    | st.integers(0, 1_790_000_000).map(str)
    | st.builds(_decimal, st.integers(0, 1_790_000_000_000), st.integers(0, 6), st.integers(0, 2)),
}
COLUMNS = {
    name: (
        st.sampled_from(GOOD[name]) | MORE_GOOD.get(name, st.nothing()),
        st.sampled_from(ODD[name]),
    )
    for name in HEADER
}


# A row is all good cells but at most one odd one: the checks of each column are tested alone.
def _row(odd_column: str | None, good: dict[str, str], odd: dict[str, str]) -> str:
    return ",".join((odd if name == odd_column else good)[name] for name in HEADER)


ROW = st.builds(
    _row,
    st.sampled_from([None, *HEADER]),
    st.fixed_dictionaries({name: good for name, (good, _) in COLUMNS.items()}),
    st.fixed_dictionaries({name: odd for name, (_, odd) in COLUMNS.items()}),
)
SPECIAL_LINE = st.one_of(
    st.sampled_from(["", "c-1,short", "c-1" + ",x" * 12, 'c-2,"quoted, name",a@example.com']),
    ROW.map(lambda line: line + "\r"),
)
# Mostly plain rows (the columnar path), now and then a line that sends its chunk to Python.
LINES = st.tuples(
    st.lists(ROW, min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 40), SPECIAL_LINE), max_size=3),
).map(lambda drawn: _insert(*drawn))


# The fast converters under test; the Rust one when the kernel was built (CI requires it:
# test_native.py).
FAST = {"polars": FrameConverter, **({"native": NativeConverter} if available() else {})}


def _insert(rows: list[str], specials: list[tuple[int, str]]) -> list[str]:
    for position, line in specials:
        rows.insert(position, line)
    return rows


def chunks(path: Path, size: int, *, blocks: bool) -> Iterator[tuple[Chunk, list[str]]]:
    with CsvSource(path) as source:
        assert source.columns is not None
        source.blocks = blocks
        for chunk in source.chunks(size):
            yield chunk, source.columns


def run(path: Path, mapping: dict[str, Any], size: int, *, fast: str | None) -> dict[str, Any]:
    """What the job would report of ``path`` with the ``fast`` converter (None: Python only)."""
    parsed = parse_mapping(mapping)
    since_ms = SINCE_MS if parsed.modified_at_column else None
    options: dict[str, Any] = {
        "job_id": "job",
        "snapshot_ms": SNAPSHOT_MS,
        "since_ms": since_ms,
        "limits": LIMITS,
    }
    # What the job reports: a line of the wrong width is a rejection wherever it was found.
    result: dict[str, Any] = {"events": [], "rejected": [], "duplicates": []}
    counts = {"rows": 0, "skipped": 0, "deletes": 0, "opt_outs": 0}
    duplicates = DuplicateIndex(lambda *found: result["duplicates"].append(found))
    converter: Any = None
    for chunk, columns in chunks(path, size, blocks=fast is not None):
        if converter is None:
            # The Rust converter notes ids in the Rust index as it converts, as in the job.
            index = {"index": duplicates.native} if fast == "native" else {}
            converter = (
                FAST[fast](parsed, columns, **options, **index)
                if fast is not None
                else ChunkConverter(parsed, columns, text_source=True, **options)
            )
        assert (chunk.block is not None) <= (fast is not None)
        out = converter.convert_chunk(chunk)
        stamps = out.stamps or [None] * len(out.lines)
        result["events"] += zip(out.lines, out.keys, stamps, out.payloads, strict=True)
        result["rejected"] += out.rejected + chunk.bad
        counts["rows"] += chunk.row_count + len(chunk.bad)
        counts["skipped"] += out.skipped
        counts["deletes"] += out.deletes
        counts["opt_outs"] += out.opt_outs
        if out.keyed is not None:
            assert out.keyed.height == len(out.lines)
        duplicates.add_output(out)
    duplicates.finish()
    result["events"].sort()
    result["rejected"].sort()
    result["duplicates"].sort()
    result.update(counts)
    return result


def write(lines: list[str]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="frames-")) / "s.csv"
    path.write_bytes((",".join(HEADER) + "\n" + "\n".join(lines) + "\n").encode())
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=LINES,
    mapping=st.sampled_from(sorted(MAPPINGS)),
    size=st.integers(1, 15),  # often several chunks
)
@example(lines=[",".join(v[0] for v in GOOD.values())], mapping="full", size=1)
def test_the_fast_paths_make_what_the_python_path_makes(
    lines: list[str], mapping: str, size: int
) -> None:
    path = write(lines)
    expected = run(path, MAPPINGS[mapping], size, fast=None)
    for fast in FAST:
        assert run(path, MAPPINGS[mapping], size, fast=fast) == expected, fast


def sweep_lines() -> list[str]:
    """Every good value of every column, and every odd one alone in an otherwise good row."""
    base = {name: values[0] for name, values in GOOD.items()}
    lines: list[str] = []
    for name in HEADER:
        for value in GOOD[name] + ODD[name]:
            row = base | {name: value, "id": f"c-{len(lines) % 7}"}
            lines.append(",".join(row[column] for column in HEADER))
    return lines


@pytest.mark.parametrize("mapping", sorted(MAPPINGS))
@pytest.mark.parametrize("size", [1, 13, 1000])
@pytest.mark.parametrize("fast", sorted(FAST))
def test_every_odd_value_alone_in_a_row_gets_the_same_verdict(
    mapping: str, size: int, fast: str
) -> None:
    path = write(sweep_lines())
    expected = run(path, MAPPINGS[mapping], size, fast=None)
    assert run(path, MAPPINGS[mapping], size, fast=fast) == expected
    assert expected["events"]
    assert expected["rejected"]


@pytest.mark.parametrize("fast", sorted(FAST))
def test_a_chunk_of_mostly_new_memo_cells_converts_like_python(fast: str) -> None:
    """The first chunks of a file meet new dates in most rows: the Rust converter learns them and
    converts those rows once more (without the GIL when they are many), with CPython's float
    reprs and odd rows mixed in."""
    lines = []
    for n in range(900):
        born = date(1900, 1, 1) + timedelta(days=n * 37)
        score = "9007199254740993" if n % 50 == 0 else f"{n}.25"
        email = "bad" if n % 97 == 0 else f"a{n}@example.com"
        lines.append(f"c-{n % 600},Ada,{email},{n},{score},true,{born},ACTIVE,1763700000,{n}")
    path = write(lines)
    for mapping in ("plain", "full"):
        expected = run(path, MAPPINGS[mapping], 1000, fast=None)
        assert run(path, MAPPINGS[mapping], 1000, fast=fast) == expected
        assert len(expected["events"]) > 800
        assert expected["duplicates"]
        assert expected["rejected"]


def test_plain_chunks_really_take_the_columnar_path(tmp_path: Path) -> None:
    """The parity above would hold trivially if blocks never happened: they do, and a good row
    never touches the Python converter."""
    path = tmp_path / "s.csv"
    good = "c-{n},Ada,a{n}@example.com,{n},1.5,true,1985-03-02,ACTIVE,1763700000,1763700000.5"
    path.write_text(",".join(HEADER) + "\n" + "\n".join(good.format(n=n) for n in range(50)) + "\n")
    parsed = parse_mapping(MAPPINGS["full"])
    for chunk, columns in chunks(path, 20, blocks=True):
        assert chunk.block is not None
        assert chunk.rows == []
        converter = FrameConverter(
            parsed, columns, job_id="job", snapshot_ms=SNAPSHOT_MS, since_ms=None, limits=LIMITS
        )
        converter._rows.convert = None  # type: ignore[assignment,method-assign]  # not to be called
        out = converter.convert_chunk(chunk)
        assert len(out.payloads) == chunk.row_count
        assert out.rejected == []
        assert isinstance(out.keyed, pl.DataFrame)


def test_crlf_line_ends_take_the_columnar_path(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"\xef\xbb\xbfid,name\r\nc-1,Ada\r\n\r\nc-2,Bob,x\r\nc-3,Eve")
    with CsvSource(crlf) as source:
        source.blocks = True
        (chunk,) = list(source.chunks(10))
    assert source.columns == ["id", "name"]
    assert (chunk.block, list(chunk.lines)) == (b"c-1,Ada\nc-3,Eve\n", [2, 5])
    assert chunk.bad == [(4, "bad_row", "3 fields, the header has 2")]


def test_quotes_lone_crs_and_other_encodings_are_parsed_in_python(tmp_path: Path) -> None:
    quoted = tmp_path / "q.csv"
    quoted.write_text('id,name\nc-1,"Ada, Countess"\nc-2,Bob\n')
    lone_cr = tmp_path / "cr.csv"
    lone_cr.write_bytes(b"id,name\nc-1,Ada\rc-2,Bob\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"id,name\nc-1,Ko\xe8ice\n")
    for path, encoding in ((quoted, "utf-8"), (lone_cr, "utf-8"), (latin, "cp1250")):
        with CsvSource(path, encoding=encoding) as source:
            source.blocks = True
            assert all(chunk.block is None for chunk in source.chunks(10))


def test_a_block_reports_lines_of_the_wrong_width_and_skips_blank_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,name\nc-1,Ada\n\nc-2\nc-3,Bob,extra\nc-4,Eve")
    with CsvSource(path) as source:
        source.blocks = True
        (chunk,) = list(source.chunks(100))
    assert chunk.block == b"c-1,Ada\nc-4,Eve\n"
    assert list(chunk.lines) == [2, 6]
    assert chunk.bad == [
        (4, "bad_row", "1 fields, the header has 2"),
        (5, "bad_row", "3 fields, the header has 2"),
    ]
    assert chunk.last_line == 6


@pytest.mark.parametrize("block_bytes", [1, 3, 7, 1 << 20])
def test_byte_lines_come_whole_whatever_the_read_size(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"one\ntwo\n\nfour\nlast")
    with path.open("rb") as handle:
        lines = ByteLines(handle, block_bytes)
        assert lines.take_bytes(2) == (b"one\ntwo\n", 2)
        assert lines.take_bytes(2) == (b"\nfour\n", 2)
        assert lines.take_bytes(5) == (b"last", 1)
        assert lines.take_bytes(5) == (b"", 0)


@pytest.mark.parametrize(
    "lines",
    [
        ["c-1,Ada,x", "c-2", "c-3,Eve"],  # one field too many, one too few: the count matches
        ["c-1", "c-2,Bob,x", "c-3,Eve"],
        ["c-1,Ada,x,y", "c-2", "c-3", "c-4,Eve"],
        ["c-1", "c-2,Bob"],  # too few only
        ["c-1,Ada", "c-2"],
        ["c-1,Ada", "c-2,Bob,x"],  # too many only
        ["c-1,Ada", "", "c-3,Eve"],  # a blank line
    ],
)
def test_lines_of_the_wrong_width_that_even_out_are_still_reported(
    tmp_path: Path, lines: list[str]
) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,name\n" + "\n".join(["c-0,Zoe"] * 30 + lines) + "\n")
    mapping = {
        "ids": [{"from_column": "id"}],
        "properties": [{"from_column": "name", "to_property": "name"}],
    }
    expected = run(path, mapping, 30, fast=None)
    for fast in FAST:
        assert run(path, mapping, 30, fast=fast) == expected, fast
    assert {line for line, _, _ in expected["rejected"]} == {
        32 + index for index, text in enumerate(lines) if text and text.count(",") != 1
    }


def test_a_source_column_named_like_the_frames_own_stays_in_python(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,__line\nc-1,Ada\nc-2,\n")
    mapping = {
        "ids": [{"from_column": "id"}],
        "properties": [{"from_column": "__line", "to_property": "name"}],
    }
    expected = run(path, mapping, 10, fast=None)
    for fast in FAST:
        assert run(path, mapping, 10, fast=fast) == expected, fast
    assert len(expected["events"]) == 2
