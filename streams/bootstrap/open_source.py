"""The snapshot source a command line or a job names: a CSV or JSONL file, or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

from streams.bootstrap.files import CsvSource, JsonlSource
from streams.bootstrap.postgres import PostgresSource
from streams.errors import ConfigError


def open_source(
    spec: str,
    *,
    query: str | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    timezone: str = "UTC",
    modified_at_column: str | None = None,
    since_ms: int | None = None,
) -> CsvSource | JsonlSource | PostgresSource:
    """The source named on the command line: ``*.csv``, ``*.jsonl``/``*.ndjson`` or a URL."""
    if spec.startswith(("postgresql://", "postgres://")):
        return PostgresSource(
            spec,
            query or "",
            timezone=timezone,
            modified_at_column=modified_at_column,
            since_ms=since_ms,
        )
    if query:
        raise ConfigError("--query is for PostgreSQL sources only")
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return CsvSource(path, delimiter="\t" if suffix == ".tsv" else delimiter, encoding=encoding)
    if suffix in (".jsonl", ".ndjson"):
        return JsonlSource(path)
    raise ConfigError(f"unknown source {spec!r}: expected *.csv, *.jsonl or postgresql://...")
