"""Whole jobs on the real broker: events on the topic, the report, the exit status."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql
from rich.console import Console

from streams.bootstrap.checkpoint import load_checkpoint
from streams.bootstrap.cli import run_bootstrap
from streams.bootstrap.convert import ms_to_seconds
from streams.bootstrap.report import Status
from streams.model import Op
from tests.test_bootstrap.bootstrap_helpers import (
    BASIC_MAPPING,
    event_lines,
    mapping_of,
    topic_events,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HEADER = ["id", "name", "email", "age", "status", "modified"]


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_a_csv_snapshot_becomes_events_the_processor_accepts(
    streams_settings, write_csv, run_job
) -> None:
    settings = streams_settings()
    rows = [[f"c-{n}", f"Name {n}", f"user{n}@example.com", str(20 + n), "", ""] for n in range(50)]
    path = write_csv(HEADER, rows)
    started_ms = time.time_ns() // 1_000_000
    job, report = run_job(settings, path, mapping_of(), chunk_rows=7)
    assert report.status is Status.COMPLETED
    assert (report.stats.total, report.stats.produced, report.stats.rejected) == (50, 50, 0)
    events = topic_events(settings)
    assert len(events) == 50
    by_id = {event.customer_id: (key, event) for key, event in events}
    key, event = by_id["c-7"]
    assert key == b"c-7"
    assert event.source == "bootstrap"
    assert dict(event.properties) == {
        "first_name": "Name 7",
        "email": "user7@example.com",
        "age": 27,
    }
    # No update_timestamp column: every row carries the snapshot time, fixed before any row.
    mtime_ms = os.stat(path).st_mtime_ns // 1_000_000
    assert job.snapshot_ms is not None
    assert job.snapshot_ms <= mtime_ms  # the data cannot be younger than its file
    assert started_ms - 60_000 < job.snapshot_ms <= started_ms + 1000
    assert {event.timestamp for _, event in events} == {job.snapshot_ms}
    assert report.snapshot_from in {"file_mtime", "job_start"}
    assert event_lines(events) == list(range(2, 52))
    checkpoint = load_checkpoint(Path(report.checkpoint_path))
    assert checkpoint is not None
    assert (checkpoint.completed, checkpoint.confirmed_line) == (True, 51)


def test_the_sample_snapshot_with_the_cli_function(streams_settings, tmp_path: Path) -> None:
    settings = streams_settings()
    report_path = tmp_path / "report.json"
    code = run_bootstrap(
        str(SAMPLES / "customers_snapshot.csv"),
        SAMPLES / "bootstrap_mapping.json",
        job_id="sample",
        report=report_path,
        max_reject_share=0.2,
        checkpoint_dir=tmp_path / "checkpoints",
        settings=settings,
        progress=False,
        console=quiet(),
    )
    assert code == 0
    report = orjson.loads(report_path.read_bytes())
    assert (report["status"], report["total"], report["produced"]) == ("completed", 8, 7)
    assert report["rejected"]["by_reason"] == {"bad_email": 1}
    assert report["rejected"]["rows"] == [
        {"line": 5, "reason": "bad_email", "detail": "column 'email': not a valid email address"}
    ]
    assert report["duplicates"]["count"] == 1
    assert report["duplicates"]["rows"] == [{"line": 4, "kept_line": 7, "same_time": False}]
    assert report["removals"] == {"deletes": 0, "opt_outs": 1}
    assert "horvath" not in report_path.read_text(encoding="utf-8")
    events = {event.event_id: event for _, event in topic_events(settings)}
    assert events["sample:6"].properties["email_status"] == "opted_out"
    assert "age" not in events["sample:6"].properties  # an empty cell leaves the property alone
    assert events["sample:8"].properties["city"] == 'Praha "Stare Mesto"'
    assert events["sample:8"].properties["first_name"] == "Tomas, Jr."
    # update_timestamp column, naive, in the mapping's Europe/Bratislava: 10:45 local = 09:45Z.
    assert events["sample:7"].timestamp == 1_763_545_500_000


def test_too_many_rejections_exit_with_status_3(streams_settings, write_csv, tmp_path) -> None:
    settings = streams_settings()
    rows = [
        [f"c-{n}", "A", "not-an-email" if n < 2 else "a@example.com", "1", "", ""]
        for n in range(10)
    ]
    path = write_csv(HEADER, rows)
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(BASIC_MAPPING))
    common: dict[str, Any] = {
        "checkpoint_dir": tmp_path / "checkpoints",
        "settings": settings,
        "progress": False,
        "console": quiet(),
    }
    assert run_bootstrap(str(path), mapping, job_id="strict", **common) == 3
    assert run_bootstrap(str(path), mapping, job_id="lenient", max_reject_share=0.2, **common) == 0
    # A rerun of a finished job produces nothing and answers as it did.
    assert run_bootstrap(str(path), mapping, job_id="strict", **common) == 3
    assert len(topic_events(settings)) == 16
    report = orjson.loads((tmp_path / "checkpoints" / "strict.report.json").read_bytes())
    assert report["status"] == "too_many_rejections"
    assert report["rejected"]["share"] == 0.2


def test_configuration_errors_exit_with_status_2(streams_settings, write_csv, tmp_path) -> None:
    settings = streams_settings()
    path = write_csv(["id", "name"], [["c-1", "x"]])
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(BASIC_MAPPING))
    out = io.StringIO()
    code = run_bootstrap(
        str(path), mapping, job_id="j", checkpoint_dir=tmp_path, settings=settings,
        progress=False, console=Console(file=out, width=200),
    )  # fmt: skip
    assert code == 2
    assert "column(s) email, age not in the source" in out.getvalue()
    code = run_bootstrap(
        str(path), mapping, job_id="j", since="24h", checkpoint_dir=tmp_path, settings=settings,
        progress=False, console=quiet(),
    )  # fmt: skip
    assert code == 2


def test_removals_as_deletes(streams_settings, write_csv, run_job) -> None:
    settings = streams_settings()
    rows = [["c-1", "A", "a@example.com", "1", "ACTIVE", ""], ["c-2", "", "", "", "OPT_OUT", ""]]
    removal = {"column": "status", "values": ["OPT_OUT"], "as": "delete"}
    _, report = run_job(settings, write_csv(HEADER, rows), mapping_of(removal=removal))
    assert report.stats.deletes == 1
    events = {event.customer_id: event for _, event in topic_events(settings)}
    assert events["c-2"].op is Op.DELETE
    assert events["c-1"].op is Op.UPSERT


def test_delta_mode_for_files(streams_settings, write_csv, run_job) -> None:
    settings = streams_settings()
    now = time.time()
    rows = [
        ["c-old", "A", "a@example.com", "1", "", str(now - 3 * 86_400)],
        ["c-new", "B", "b@example.com", "2", "", str(now - 3_600)],
    ]
    mapping = mapping_of(modified_at_column="modified")
    _, report = run_job(settings, write_csv(HEADER, rows), mapping, since="24h")
    assert (report.stats.skipped, report.stats.produced) == (1, 1)
    assert [event.customer_id for _, event in topic_events(settings)] == ["c-new"]


def test_a_jsonl_snapshot(streams_settings, tmp_path: Path, run_job) -> None:
    settings = streams_settings()
    path = tmp_path / "s.jsonl"
    path.write_bytes(
        b'{"id": "c-1", "name": "Ada", "email": "ada@example.com", "age": 36}\n'
        b'{"id": 2, "name": "Bob", "age": "40"}\n'
        b"not json\n"
    )
    _, report = run_job(settings, path, mapping_of())
    assert (report.stats.produced, report.stats.rejected) == (2, 1)
    events = {event.customer_id: event for _, event in topic_events(settings)}
    assert dict(events["2"].properties) == {"first_name": "Bob", "age": 40}


def test_a_postgresql_snapshot_read_at_the_job_start(
    streams_settings, postgres_dsn: str, run_job
) -> None:
    settings = streams_settings()
    table = f"snap_{os.getpid()}_{time.time_ns() % 10**6}"
    name = sql.Identifier(table)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int, name text, email text, age int)").format(name)
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} SELECT n, 'N' || n, 'u' || n || '@example.com', n "
                "FROM generate_series(1, 120) n"
            ).format(name)
        )
    before = time.time_ns() // 1_000_000
    job, report = run_job(
        settings,
        postgres_dsn,
        mapping_of(),
        query=f"SELECT * FROM {table} ORDER BY id",
        chunk_rows=50,
    )
    assert report.status is Status.COMPLETED
    assert report.stats.produced == 120
    events = topic_events(settings)
    assert {event.customer_id for _, event in events} == {str(n) for n in range(1, 121)}
    assert job.snapshot_ms is not None
    assert before <= job.snapshot_ms <= before + 5_000
    assert report.snapshot_from == "job_start"
    assert {event.timestamp for _, event in events} == {job.snapshot_ms}
    assert events[0][1].event_id is not None


def test_an_explicit_snapshot_time(streams_settings, write_csv, run_job) -> None:
    settings = streams_settings()
    path = write_csv(HEADER, [["c-1", "A", "a@example.com", "1", "", ""]])
    job, report = run_job(settings, path, mapping_of(), snapshot_time="2026-11-01T08:00:00Z")
    assert report.to_dict()["snapshot_time_from"] == "option"
    ((_, event),) = topic_events(settings)
    assert event.timestamp == job.snapshot_ms == 1_793_520_000_000
    assert ms_to_seconds(event.timestamp) == 1_793_520_000


def test_an_unreachable_broker_fails_the_job_and_keeps_the_checkpoint(
    write_csv, run_job, tmp_path: Path
) -> None:
    from streams.settings import Settings

    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", delivery_timeout_ms=1000)
    path = write_csv(HEADER, [[f"c-{n}", "A", "a@example.com", "1", "", ""] for n in range(5)])
    _, report = run_job(settings, path, mapping_of())
    assert report.status is Status.DELIVERY_FAILED
    assert report.exit_code == 1
    assert report.delivery_failures == 5
    assert report.confirmed_line == 0
    assert "timed out" in report.delivery_errors[0].lower()


def test_progress_and_summary_render(streams_settings, write_csv, tmp_path: Path) -> None:
    settings = streams_settings()
    path = write_csv(HEADER, [[f"c-{n}", "A", "a@example.com", "1", "", ""] for n in range(5)])
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(BASIC_MAPPING))
    out = io.StringIO()
    console = Console(file=out, width=150, force_terminal=True)
    assert run_bootstrap(
        str(path), mapping, checkpoint_dir=tmp_path, settings=settings, progress=True,
        console=console,
    ) == 0  # fmt: skip
    text = out.getvalue()
    assert "rows/s" in text
    assert "produced" in text
    assert "report:" in text
