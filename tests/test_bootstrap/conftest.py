"""Fixtures for bootstrap tests: snapshot files, mappings, jobs, a PostgreSQL server, a worker."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import BootstrapMapping
from streams.bootstrap.open_source import open_source
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import JobReport
from streams.bootstrap.sources import Source
from streams.settings import Settings
from tests.test_bootstrap.bootstrap_helpers import BASIC_MAPPING

POSTGRES_DSN_ENV = "STREAMS_TEST_POSTGRES_DSN"
ASSIGN_TIMEOUT = 60.0


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """``write_csv(header, rows, name=...)``: a CSV file in the test's directory."""

    def write(header: Sequence[str], rows: Sequence[Sequence[object]], name: str = "s.csv") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[..., Path]:
    def write(
        data: dict[str, Any] | None = None, name: str = "mapping.json", **changes: Any
    ) -> Path:
        path = tmp_path / name
        path.write_bytes(orjson.dumps({**(data or BASIC_MAPPING), **changes}))
        return path

    return write


@pytest.fixture
def run_job(tmp_path: Path) -> Callable[..., tuple[BootstrapJob, JobReport]]:
    """``run_job(settings, source_path_or_factory, mapping, **options)`` -> (job, report)."""

    def run(
        settings: Settings,
        source: Path | str | Callable[[int | None], Source],
        mapping: BootstrapMapping,
        *,
        query: str | None = None,
        **options: Any,
    ) -> tuple[BootstrapJob, JobReport]:
        if callable(source):
            make = source
        else:

            def make(since_ms: int | None) -> Source:
                return open_source(
                    str(source),
                    query=query,
                    timezone=mapping.timezone,
                    modified_at_column=mapping.modified_at_column,
                    since_ms=since_ms,
                )

        options.setdefault("job_id", "job-1")
        options.setdefault("checkpoint_dir", tmp_path / "checkpoints")
        job = BootstrapJob(settings, mapping, make, JobOptions(**options))
        return job, job.run()

    return run
