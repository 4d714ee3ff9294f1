"""A PostgreSQL query as a snapshot source, read through a server-side (named) cursor."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from streams.bootstrap.sources import Chunk, SourceError
from streams.errors import ConfigError
from streams.logs import mask_dsn
from streams.optional import requires

DEFAULT_ITERSIZE = 10_000
# psycopg is imported by the methods that use it: a CSV bootstrap imports this module too.
NEEDED_BY = "the PostgreSQL source"


class PostgresSource:
    """Rows of ``query``, fetched ``itersize`` at a time through a named (server-side) cursor.

    Line numbers are row numbers (1-based). A resumed job skips the rows it already delivered,
    so a resumable query needs a deterministic ``ORDER BY``.
    """

    text = False

    def __init__(
        self,
        dsn: str,
        query: str,
        *,
        timezone: str = "UTC",
        modified_at_column: str | None = None,
        since_ms: int | None = None,
        itersize: int = DEFAULT_ITERSIZE,
    ) -> None:
        query = query.strip().rstrip(";").strip()
        if not query:
            raise ConfigError("a PostgreSQL source needs --query")
        if since_ms is not None and modified_at_column is None:
            raise ConfigError("--since needs modified_at_column in the mapping")
        self._dsn = dsn
        self._query = query
        self._timezone = timezone
        self._modified_at = modified_at_column
        self._since_ms = since_ms
        self._itersize = itersize
        self.description = f"{mask_dsn(dsn)} ({len(query)}-character query)"
        self.columns: list[str] | None = None

    def estimate_total(self) -> int | None:
        return None  # counting would run the query twice

    def fingerprint(self) -> str:
        raw = f"{mask_dsn(self._dsn)}|{self._query}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def modified_ms(self) -> int | None:
        return None

    def statement(self) -> Any:
        """The query, wrapped in the delta filter when --since is given (no parameters, so a
        ``%`` in the user's SQL stays as written)."""
        from datetime import UTC, datetime

        with requires("psycopg", NEEDED_BY):
            from psycopg import sql

        statement = sql.SQL(self._query)  # the user's own SQL, by design
        if self._since_ms is None or self._modified_at is None:
            return statement
        since = datetime.fromtimestamp(self._since_ms / 1000, UTC)
        return sql.SQL("SELECT * FROM ({}) AS q WHERE {} >= {}").format(
            statement, sql.Identifier(self._modified_at), sql.Literal(since)
        )

    def __enter__(self) -> Self:
        with requires("psycopg", NEEDED_BY):
            import psycopg
            from psycopg import sql
        try:
            self._conn = psycopg.connect(self._dsn)
            self._conn.read_only = True
            self._conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(self._timezone)))
            self._cursor = self._conn.cursor(name=f"streams_bootstrap_{uuid.uuid4().hex[:12]}")
            self._cursor.itersize = self._itersize
            self._cursor.execute(self.statement())
        except psycopg.Error as exc:
            self.__exit__(None, None, None)
            raise SourceError(f"{self.description}: {mask_dsn(str(exc)).strip()}") from exc
        self.columns = [column.name for column in self._cursor.description or ()]
        return self

    def chunks(self, size: int) -> Iterator[Chunk]:
        with requires("psycopg", NEEDED_BY):
            import psycopg

        cursor = self._cursor
        cursor.itersize = max(self._itersize, size)
        line = 0
        try:
            while rows := cursor.fetchmany(size):
                yield Chunk(rows, range(line + 1, line + len(rows) + 1), [], line + len(rows))
                line += len(rows)
        except psycopg.Error as exc:
            raise SourceError(f"{self.description} after row {line}: {exc}") from exc

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()  # rolls back the read-only transaction and drops the cursor
