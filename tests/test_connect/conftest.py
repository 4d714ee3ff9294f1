"""PostgreSQL fixtures for the connector tests (``postgres_*``; other sinks bring their own).

``postgres_dsn`` (tests/conftest.py) is the session's server; each test gets a schema of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg
import pytest
from psycopg import sql

from streams.connect.sinks.postgres import PostgresSink
from streams.settings import Settings

POSTGRES_DSN_ENV = "STREAMS_TEST_POSTGRES_DSN"
POSTGRES_CONNECT_TIMEOUT_S = 10

PostgresSinkFactory = Callable[..., PostgresSink]


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh, empty schema, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def postgres_settings() -> Settings:
    """Settings with a source priority, so tie-breaks by priority are exercised."""
    return Settings(source_priority=["crm", "web"])


@pytest.fixture
def postgres_sink_factory(
    postgres_dsn: str, postgres_schema: str, postgres_settings: Settings
) -> Iterator[PostgresSinkFactory]:
    """``make(**options)``: a set-up sink on the test's schema (a fresh table per call unless
    ``table`` is given); every sink made is closed after the test."""
    made: list[PostgresSink] = []

    def make(
        settings: Settings | None = None, name: str = "pg-test", **options: Any
    ) -> PostgresSink:
        values: dict[str, Any] = {
            "dsn": postgres_dsn,
            "schema": postgres_schema,
            "table": f"profiles_{uuid.uuid4().hex[:8]}",
        }
        values.update(options)
        sink = PostgresSink(values, name=name, settings=settings or postgres_settings)
        made.append(sink)
        sink.setup()
        return sink

    yield make
    for sink in made:
        sink.close()


@pytest.fixture
def postgres_query(postgres_dsn: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """``query(sql, params)``: rows of one statement on a connection of its own (autocommit)."""
    conn = psycopg.connect(postgres_dsn, autocommit=True)

    def query(
        statement: str | sql.Composable, params: Mapping[str, Any] | tuple[Any, ...] = ()
    ) -> list[tuple[Any, ...]]:
        cursor = conn.execute(statement, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []

    yield query
    conn.close()
