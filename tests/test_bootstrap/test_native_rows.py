"""The native converter (Rust: ``csv_core``, ``serde_json``) makes what the Python reference
makes of the same file: Python's csv module (or orjson per JSONL line) and the Python converter.

Same events after decoding, same keys, update times, rejections with their lines and reasons,
bad lines, skipped rows, removals and duplicates: whatever the cells hold (odd numbers, spaces,
escapes, control characters, quotes, delimiters and line ends inside quoted fields, empty cells,
typed JSON values), however the file is written (delimiters, CR/LF/CRLF, a BOM, other
encodings) and however it is cut into chunks.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.bootstrap.columns import MEMO_LIMIT
from streams.bootstrap.dedupe import DuplicateIndex
from streams.bootstrap.files import CsvSource, JsonlSource, json_rows
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, RowLimits

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
def _row(odd_column: str | None, good: dict[str, str], odd: dict[str, str]) -> list[str]:
    return [(odd if name == odd_column else good)[name] for name in HEADER]


ROW = st.builds(
    _row,
    st.sampled_from([None, *HEADER]),
    st.fixed_dictionaries({name: good for name, (good, _) in COLUMNS.items()}),
    st.fixed_dictionaries({name: odd for name, (_, odd) in COLUMNS.items()}),
)
SPECIAL_ROW = st.sampled_from(
    [[], [""], ["c-1", "short"], ["c-1"] + ["x"] * 12, ["c-2", 'quoted, name\nwith "lines"']]
)
# Mostly regular rows, now and then a blank, short, long or quoted one.
ROWS = st.tuples(
    st.lists(ROW, min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 40), SPECIAL_ROW), max_size=3),
).map(lambda drawn: _insert(*drawn))
DIALECT = st.fixed_dictionaries(
    {
        "delimiter": st.sampled_from([",", ";", "\t"]),
        "lineterminator": st.sampled_from(["\n", "\r\n", "\r"]),
        "bom": st.booleans(),
        "encoding": st.sampled_from(["utf-8", "utf-8", "cp1250", "latin-1"]),
    }
)


def _insert(rows: list[list[str]], specials: list[tuple[int, list[str]]]) -> list[list[str]]:
    for position, row in specials:
        rows.insert(position, row)
    return rows


def write(
    rows: Sequence[Sequence[str] | str],
    *,
    delimiter: str = ",",
    lineterminator: str = "\n",
    bom: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """A CSV of HEADER and ``rows`` (lists of cells, or lines written as they are)."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator=lineterminator)
    writer.writerow(HEADER)
    for row in rows:
        if isinstance(row, str):
            text.write(row + lineterminator)
        else:
            writer.writerow(row)
    path = Path(tempfile.mkdtemp(prefix="native-")) / "s.csv"
    data = text.getvalue().encode(encoding, errors="replace")
    path.write_bytes((b"\xef\xbb\xbf" if bom and encoding == "utf-8" else b"") + data)
    return path


def _options(parsed: Any) -> dict[str, Any]:
    since_ms = SINCE_MS if parsed.modified_at_column else None
    return {"job_id": "job", "snapshot_ms": SNAPSHOT_MS, "since_ms": since_ms, "limits": LIMITS}


class Result:
    """What the job would report of a file."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"events": [], "rejected": [], "duplicates": []}
        self.data.update(rows=0, skipped=0, deletes=0, opt_outs=0)
        self.index = DuplicateIndex(lambda *found: self.data["duplicates"].append(found))

    def add(self, out: ChunkOutput, bad: list[tuple[int, str, str]], rows: int) -> None:
        stamps: list[float | None] = [*out.stamps] if out.stamps else [None] * len(out.lines)
        self.data["events"] += [
            (line, key, stamp, orjson.loads(payload))
            for line, key, stamp, payload in zip(
                out.lines, out.keys, stamps, out.payloads, strict=True
            )
        ]
        self.data["rejected"] += out.rejected + bad
        self.data["rows"] += rows + len(bad)
        self.data["skipped"] += out.skipped
        self.data["deletes"] += out.deletes
        self.data["opt_outs"] += out.opt_outs

    def finish(self) -> dict[str, Any]:
        self.index.finish()
        for name in ("events", "rejected", "duplicates"):
            self.data[name].sort(key=repr)
        return self.data


def reference(path: Path, mapping: dict[str, Any], **dialect: Any) -> dict[str, Any]:
    """What the Python reference makes of ``path``."""
    parsed = parse_mapping(mapping)
    result = Result()
    if path.suffix == ".jsonl":
        raw = path.read_bytes().split(b"\n")
        if raw[-1] == b"":
            raw.pop()
        rows, lines, bad = json_rows(raw, range(1, len(raw) + 1))
        columns = None
    else:
        encoding = dialect.get("encoding", "utf-8")
        encoding = "utf-8-sig" if encoding == "utf-8" else encoding
        rows, lines, bad = [], [], []
        with path.open(newline="", encoding=encoding) as handle:
            reader = csv.reader(handle, delimiter=dialect.get("delimiter", ","))
            columns = [name.strip() for name in next(reader)]
            for row in reader:
                if len(row) == len(columns):
                    rows.append(row)
                    lines.append(reader.line_num)
                elif row and row != [""]:  # a blank line is not a record
                    detail = f"{len(row)} fields, the header has {len(columns)}"
                    bad.append((reader.line_num, "bad_row", detail))
    python = ChunkConverter(parsed, columns, text_source=columns is not None, **_options(parsed))
    out = python.convert(rows, lines)
    result.index.add(out.keys, out.stamps, out.lines)
    result.add(out, bad, len(rows))
    return result.finish()


def run(
    path: Path, mapping: dict[str, Any], size: int, *, memo_limit: int = MEMO_LIMIT, **dialect: Any
) -> dict[str, Any]:
    """What the native converter makes of ``path``, ``size`` rows a chunk at most."""
    parsed = parse_mapping(mapping)
    result = Result()
    source: CsvSource | JsonlSource = (
        JsonlSource(path)
        if path.suffix == ".jsonl"
        else CsvSource(
            path,
            delimiter=dialect.get("delimiter", ","),
            encoding=dialect.get("encoding", "utf-8"),
        )
    )
    with source:
        converter = NativeConverter(
            parsed, source, index=result.index.native, memo_limit=memo_limit, **_options(parsed)
        )
        for chunk, out in converter.chunks(size):
            assert chunk.row_count + len(chunk.bad) <= size
            result.add(out, chunk.bad, chunk.row_count)
    return result.finish()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=ROWS,
    mapping=st.sampled_from(sorted(MAPPINGS)),
    size=st.integers(1, 15),  # often several chunks
    dialect=DIALECT,
)
@example(
    rows=[[v[0] for v in GOOD.values()]],
    mapping="full",
    size=1,
    dialect={"delimiter": ",", "lineterminator": "\n", "bom": False, "encoding": "utf-8"},
)
def test_the_native_converter_makes_what_the_python_reference_makes(
    rows: list[list[str]], mapping: str, size: int, dialect: dict[str, Any]
) -> None:
    path = write(rows, **dialect)
    dialect.pop("bom")
    dialect.pop("lineterminator")
    expected = reference(path, MAPPINGS[mapping], **dialect)
    assert run(path, MAPPINGS[mapping], size, **dialect) == expected


def sweep_rows() -> list[list[str]]:
    """Every good value of every column, and every odd one alone in an otherwise good row."""
    base = {name: values[0] for name, values in GOOD.items()}
    rows: list[list[str]] = []
    for name in HEADER:
        for value in GOOD[name] + ODD[name]:
            row = base | {name: value, "id": f"c-{len(rows) % 7}"}
            rows.append([row[column] for column in HEADER])
    return rows


@pytest.mark.parametrize("mapping", sorted(MAPPINGS))
@pytest.mark.parametrize("size", [1, 13, 1000])
def test_every_odd_value_alone_in_a_row_gets_the_same_verdict(mapping: str, size: int) -> None:
    path = write(sweep_rows())
    expected = reference(path, MAPPINGS[mapping])
    assert run(path, MAPPINGS[mapping], size) == expected
    assert expected["events"]
    assert expected["rejected"]


def test_a_chunk_of_mostly_new_memo_cells_converts_like_python() -> None:
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
        expected = reference(path, MAPPINGS[mapping])
        assert run(path, MAPPINGS[mapping], 1000) == expected
        assert len(expected["events"]) > 800
        assert expected["duplicates"]
        assert expected["rejected"]


@pytest.mark.parametrize("memo_limit", [1, 2, 5])
def test_memos_that_start_over_change_nothing(memo_limit: int) -> None:
    path = write(sweep_rows())
    expected = reference(path, MAPPINGS["full"])
    assert run(path, MAPPINGS["full"], 13, memo_limit=memo_limit) == expected


def test_regular_rows_never_reach_the_python_converter(tmp_path: Path) -> None:
    """The parity above would hold trivially if Python converted every row: it converts none
    of the regular ones, quoted fields and CRLF line ends included."""
    good = 'c-{n},"Ada, ""A"" \r\nL",a{n}@example.com,{n},1.5,true,1985-03-02,ACTIVE,'
    good += "1763700000,1763700000.5"
    path = write([good.format(n=n) for n in range(50)], lineterminator="\r\n")
    with CsvSource(path) as source:
        parsed = parse_mapping(MAPPINGS["full"])
        converter = NativeConverter(parsed, source, **_options(parsed))
        converter.full.convert = None  # type: ignore[assignment,method-assign]  # not to be called
        outs = list(converter.chunks(20))
    assert sum(len(out.payloads) for _, out in outs) == 50
    assert orjson.loads(outs[0][1].payloads[0])["properties"]["name"] == 'Ada, "A" \r\nL'


# JSON values of every type a column may meet; texts are the CSV cells'.
JSON_VALUE: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([None, True, False, [], {"a": 1}, 0, -0.0, 1.0, 1.5, 3.0, 1e300]),
    st.integers(-(2**63), 2**64 - 1),  # what orjson writes
    st.floats(allow_nan=False, allow_infinity=False),
)
MISSING = object()


def _json_row(cells: list[str], typed: dict[str, object]) -> bytes:
    row: dict[str, object] = dict(zip(HEADER, cells, strict=True))
    for name, value in typed.items():
        if value is MISSING:
            row.pop(name)
        else:
            row[name] = value
    return orjson.dumps(row)


JSON_LINE = st.builds(
    _json_row,
    ROW,
    st.dictionaries(st.sampled_from(HEADER), JSON_VALUE | st.just(MISSING), max_size=3),
) | st.sampled_from(
    [
        *(b"", b"   ", b"{broken", b"[1, 2]", b'"text"', b"\x0c", b'{"id": "c-\xff"}', b"{}\r"),
        b'{"id": "c-1", "id": "c-2", "name": "Ada"}',
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(JSON_LINE, min_size=1, max_size=40),
    mapping=st.sampled_from(sorted(MAPPINGS)),
    size=st.integers(1, 15),
    newline=st.booleans(),
)
def test_jsonl_rows_convert_as_the_python_reference_converts_them(
    lines: list[bytes], mapping: str, size: int, newline: bool
) -> None:
    path = Path(tempfile.mkdtemp(prefix="native-")) / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))
    assert run(path, MAPPINGS[mapping], size) == reference(path, MAPPINGS[mapping])


def test_typed_json_values_take_the_native_path_where_their_text_converts_alike(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.jsonl"
    row = {"id": 7, "name": 42, "email": "a@example.com", "age": 5, "score": 2}
    path.write_bytes(orjson.dumps(row | {"flag": True, "born": 86400}) + b"\n")
    with JsonlSource(path) as source:
        parsed = parse_mapping(MAPPINGS["plain"])
        converter = NativeConverter(parsed, source, **_options(parsed))
        converter.full.convert = None  # type: ignore[assignment,method-assign]  # not to be called
        ((_, out),) = list(converter.chunks(10))
    assert orjson.loads(out.payloads[0])["properties"] == {
        "name": "42",
        "email": "a@example.com",
        "age": 5,
        "score": 2.0,
        "flag": True,
        "born": 86400,
    }
    assert out.keys == [b"7"]
