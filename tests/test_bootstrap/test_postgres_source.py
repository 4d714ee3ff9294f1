"""The PostgreSQL source on a real server: a server-side cursor, chunks, delta wrapping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from streams.bootstrap.postgres import PostgresSource
from streams.bootstrap.sources import SourceError

ROWS = 2_500
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def customers(postgres_dsn: str) -> Iterator[str]:
    """A fresh table of ROWS customers: id, email, age, modified_at (one hour apart)."""
    table = f"customers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id text PRIMARY KEY, email text, age int, "
                "score numeric, modified_at timestamptz, born date)"
            ).format(sql.Identifier(table))
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(
                    sql.Identifier(table)
                ),
                [
                    (
                        f"c-{n:05d}",
                        f"user{n}@example.com" if n % 2 else f"user{n}@example.org",
                        20 + n % 50,
                        n / 4,
                        T0 + timedelta(hours=n),
                        None,
                    )
                    for n in range(ROWS)
                ],
            )
    yield table
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
        conn.execute(sql.SQL("DROP SEQUENCE IF EXISTS {}").format(sql.Identifier(table + "_seq")))


def test_rows_stream_through_a_named_cursor_a_chunk_at_a_time(
    postgres_dsn: str, customers: str
) -> None:
    source = PostgresSource(postgres_dsn, f"SELECT id, email, age FROM {customers} ORDER BY id;")
    sizes = []
    seen = []
    with source:
        assert source.columns == ["id", "email", "age"]
        for chunk in source.chunks(1_000):
            sizes.append(len(chunk.rows))
            seen += chunk.rows
            cursors = source._conn.execute("SELECT name FROM pg_cursors").fetchall()
            assert [name for (name,) in cursors if name.startswith("streams_bootstrap_")]
            assert chunk.last_line == len(seen)
    assert sizes == [1_000, 1_000, 500]
    assert seen[0] == ("c-00000", "user0@example.org", 20)
    assert len({row[0] for row in seen}) == ROWS


def test_the_session_is_read_only(postgres_dsn: str, customers: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}").format(sql.Identifier(customers + "_seq"))
        )
    query = f"SELECT id, nextval('{customers}_seq') FROM {customers}"
    with (
        pytest.raises(SourceError, match="read-only"),
        PostgresSource(postgres_dsn, query) as source,
    ):
        list(source.chunks(10))


def test_delta_mode_wraps_the_query_and_keeps_a_percent_sign(
    postgres_dsn: str, customers: str
) -> None:
    since = T0 + timedelta(hours=ROWS - 10)
    source = PostgresSource(
        postgres_dsn,
        f"SELECT id, modified_at FROM {customers} WHERE email LIKE '%@example.com' ORDER BY id",
        modified_at_column="modified_at",
        since_ms=int(since.timestamp() * 1000),
    )
    with source:
        rows = [row for chunk in source.chunks(100) for row in chunk.rows]
    assert [row[0] for row in rows] == [f"c-{n:05d}" for n in range(ROWS - 9, ROWS, 2)]


def test_errors_name_the_source_without_its_password(postgres_dsn: str) -> None:
    with pytest.raises(SourceError, match="no_such_table") as caught:
        PostgresSource(postgres_dsn, "SELECT * FROM no_such_table").__enter__()
    assert "(" in str(caught.value)
    dsn = "postgresql://app:s3cret@127.0.0.1:1/crm?connect_timeout=2"
    with pytest.raises(SourceError) as caught:
        PostgresSource(dsn, "SELECT 1").__enter__()
    assert "s3cret" not in str(caught.value)
