"""File sources: chunks with exact line numbers, quoted newlines, bad lines; source selection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.bootstrap.files import CsvSource, JsonlSource
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.open_source import open_source
from streams.bootstrap.postgres import PostgresSource
from streams.bootstrap.rows import RowLimits
from streams.bootstrap.sources import count_lines
from streams.errors import ConfigError
from streams.logs import mask_dsn


def read_all(
    source: CsvSource | JsonlSource, size: int
) -> tuple[list[Any], list[int], list[tuple[int, str, str]], int]:
    """(rows, lines, bad lines, last line) as the native converter reads a file: every column a
    string property (JSONL: ``id`` and ``n``), a row the event's id and properties."""
    rows: list[Any] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    last = 0
    with source:
        names = source.columns or ["id", "n"]
        mapping = parse_mapping(
            {
                "ids": [{"from_column": names[0]}],
                "properties": [{"from_column": name, "to_property": name} for name in names[1:]],
                "empty_values": "null",
            }
        )
        limits = RowLimits(2**50, 1 << 20)
        converter = NativeConverter(
            mapping, source, job_id="t", snapshot_ms=0, since_ms=None, limits=limits
        )
        for chunk, out in converter.chunks(size):
            for line, payload in sorted(zip(out.lines, out.payloads, strict=True)):
                event = orjson.loads(payload)
                values = [event["properties"][name] or "" for name in names[1:]]
                rows.append([event["customer_id"], *values])
                lines.append(line)
            bad += chunk.bad
            assert chunk.last_line > last
            last = chunk.last_line
    return rows, lines, bad, last


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_csv_lines_stay_exact_across_quoted_newlines_and_chunk_edges(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        'id,note\nc-1,plain\nc-2,"two\nlines"\n\nc-3,"say ""hi"", then\n\nleave"\nc-4\nc-5,last',
        encoding="utf-8",
    )
    rows, lines, bad, last = read_all(CsvSource(path), size)
    assert rows == [
        ["c-1", "plain"],
        ["c-2", "two\nlines"],
        ["c-3", 'say "hi", then\n\nleave'],
        ["c-5", "last"],
    ]
    assert lines == [2, 4, 8, 10]
    assert bad == [(9, "bad_row", "1 fields, the header has 2")]
    assert last == 10


def test_csv_line_ends_and_a_byte_order_mark_read_alike(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("id,a,b\n1,x,\n2, y ,z\n\n3,,\n", encoding="utf-8")
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"\xef\xbb\xbfid,a,b\r\n1,x,\r\n2, y ,z\r\n\r\n3,,\r\n")
    lone_cr = tmp_path / "cr.csv"
    lone_cr.write_bytes(b"id,a,b\r1,x,\r2, y ,z\r\r3,,\r")
    expected = [["1", "x", ""], ["2", " y ", "z"], ["3", "", ""]]
    for path in (plain, crlf, lone_cr):
        source = CsvSource(path)
        rows, lines, bad, _ = read_all(source, 2)
        assert source.columns == ["id", "a", "b"]
        assert (rows, lines, bad) == (expected, [2, 3, 5], [])


def test_other_delimiters_and_encodings(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes('id;name\n1;"Košice; SK"\n2;Žilina\n'.encode("cp1250"))
    rows, _, _, _ = read_all(CsvSource(path, delimiter=";", encoding="cp1250"), 10)
    assert rows == [["1", "Košice; SK"], ["2", "Žilina"]]


def test_csv_needs_a_header_and_valid_text(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty: a header line is required"):
        read_all(CsvSource(empty), 10)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"id,name\n1,ok\n2,Ko\xe8ice\n")
    with pytest.raises(ConfigError, match=r"not utf-8 text \(line 3: .*set \"encoding\""):
        read_all(CsvSource(latin), 1)
    rows, _, _, _ = read_all(CsvSource(latin, encoding="cp1250"), 10)
    assert rows[1] == ["2", "Kočice"]


def test_jsonl_reports_broken_lines_and_skips_blank_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"id": "c-1"}\n\n{"id": \n[1, 2]\n   \n{"id": "c-2", "n": "x"}')
    rows, lines, bad, last = read_all(JsonlSource(path), 2)
    assert rows == [["c-1", ""], ["c-2", "x"]]
    assert lines == [1, 6]
    assert [(line, reason) for line, reason, _ in bad] == [(3, "bad_json"), (4, "not_an_object")]
    assert last == 6


def test_line_counts_for_progress(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id\n1\n2", encoding="utf-8")
    assert count_lines(path) == 3
    assert CsvSource(path).estimate_total() == 2


def test_a_changed_file_changes_the_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id\n1\n", encoding="utf-8")
    before = CsvSource(path).fingerprint()
    path.write_text("id\n1\n2\n", encoding="utf-8")
    assert CsvSource(path).fingerprint() != before


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("a.csv", CsvSource),
        ("a.TSV", CsvSource),
        ("a.jsonl", JsonlSource),
        ("a.ndjson", JsonlSource),
    ],
)
def test_open_source_picks_by_suffix(
    tmp_path: Path, spec: str, kind: type, write_csv: Callable[..., Path]
) -> None:
    (tmp_path / spec).write_text("id\n", encoding="utf-8")
    assert isinstance(open_source(str(tmp_path / spec)), kind)


def test_open_source_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown source"):
        open_source(str(tmp_path / "a.xlsx"))
    with pytest.raises(ConfigError, match="cannot read"):
        open_source(str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="--query"):
        open_source("postgresql://db/crm")
    with pytest.raises(ConfigError, match="PostgreSQL sources only"):
        open_source(str(tmp_path / "a.csv"), query="SELECT 1")


def test_passwords_never_reach_descriptions() -> None:
    assert mask_dsn("postgresql://app:s3cret@db:5432/crm") == "postgresql://app:***@db:5432/crm"
    assert mask_dsn("host=db password='a b' user=x") == "host=db password=*** user=x"
    source = PostgresSource("postgresql://app:s3cret@db/crm", "SELECT 1;")
    assert "s3cret" not in source.description
    assert "s3cret" not in source.fingerprint()


def test_delta_queries_are_wrapped_without_parameters() -> None:
    from psycopg import sql

    source = PostgresSource(
        "postgresql://db/crm",
        "SELECT * FROM customers WHERE email LIKE '%@example.com';",
        modified_at_column="modified_at",
        since_ms=1_793_491_200_000,
    )
    statement = source.statement()
    assert isinstance(statement, sql.Composed)
    with pytest.raises(ConfigError, match="modified_at_column"):
        PostgresSource("postgresql://db/crm", "SELECT 1", since_ms=1)
