"""Resumability: after a failure, Ctrl-C or a hard kill the same job id continues with no gap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.bootstrap.checkpoint import load_checkpoint
from streams.bootstrap.files import CsvSource
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import JobReport, Status
from streams.errors import ConfigError
from streams.testing import wait_until
from tests.test_bootstrap.bootstrap_helpers import (
    BASIC_MAPPING,
    event_lines,
    mapping_of,
    topic_events,
)

HEADER = ["id", "name", "email", "age"]
ROWS = 400


def spawn_job(
    settings: Any,
    path: Path,
    tmp_path: Path,
    checkpoints: Path,
    job_id: str,
    *,
    max_rate: int,
    stdout: int | None = None,
) -> subprocess.Popen[str]:
    """A throttled bootstrap job in a process of its own, so the test can kill or stop it."""
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(BASIC_MAPPING))
    script = (
        "import sys; from pathlib import Path; from streams.bootstrap import run_bootstrap;"
        f"sys.exit(run_bootstrap({str(path)!r}, Path({str(mapping)!r}), job_id={job_id!r},"
        f" checkpoint_dir=Path({str(checkpoints)!r}), max_rate={max_rate}, progress=False))"
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_INPUT_TOPIC": settings.input_topic,
        "STREAMS_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=os.getcwd(), stdout=stdout, text=True
    )


def confirmed_beyond(checkpoint_file: Path, line: int) -> Callable[[], bool]:
    def check() -> bool:
        saved = load_checkpoint(checkpoint_file) if checkpoint_file.exists() else None
        return saved is not None and saved.confirmed_line > line

    return check


class FailingSource(CsvSource):
    """A CSV source that raises ``error`` once ``after`` pieces of 50 rows were read."""

    def __init__(self, path: Path, after: int, error: BaseException) -> None:
        super().__init__(path)
        self._after = after
        self._error = error

    def blocks(self) -> Iterator[bytes]:
        lines = self.path.read_bytes().splitlines(keepends=True)
        for number, start in enumerate(range(1, len(lines), 50)):  # the header comes first
            if number == self._after:
                raise self._error
            yield b"".join(lines[0 if start == 1 else start : start + 50])


def snapshot(write_csv: Any, rows: int = ROWS) -> Path:
    """Line 9 holds a bad email; every tenth row an empty name (such rows are built apart)."""
    data = [
        [f"c-{n}", "" if n % 10 == 3 else f"N{n}", "bad" if n == 7 else f"u{n}@x.org", str(n)]
        for n in range(rows)
    ]
    path: Path = write_csv(HEADER, data)
    return path


@pytest.mark.parametrize(
    ("error", "status"),
    [(RuntimeError("disk on fire"), Status.FAILED), (KeyboardInterrupt(), Status.INTERRUPTED)],
)
def test_a_rerun_continues_after_the_last_confirmed_line(
    streams_settings, write_csv, run_job, error: BaseException, status: Status
) -> None:
    settings = streams_settings()
    path = snapshot(write_csv)
    first_job, first = run_job(
        settings, lambda _: FailingSource(path, 3, error), mapping_of(), chunk_rows=50
    )
    assert first.status is status
    assert first.exit_code == (130 if status is Status.INTERRUPTED else 1)
    assert first.confirmed_line == 151  # three chunks of 50 rows after the header line
    checkpoint = load_checkpoint(Path(first.checkpoint_path))
    assert checkpoint is not None
    assert (checkpoint.confirmed_line, checkpoint.completed) == (151, False)

    # Other chunk edges this time: one chunk straddles the resume point.
    second_job, second = run_job(settings, path, mapping_of(), chunk_rows=70)
    assert second.status is Status.COMPLETED
    assert second.resumed_after_line == 151
    assert second.stats.produced == ROWS - 150
    assert second.stats.replayed == 149  # the prefix is re-validated, not produced again
    assert second.stats.rejected_rows == [  # so the report still names its bad row
        {"line": 9, "reason": "bad_email", "detail": "column 'email': not a valid email address"}
    ]
    events = topic_events(settings)
    assert event_lines(events) == [line for line in range(2, ROWS + 2) if line != 9]
    # Both runs stamped the snapshot time of the first.
    assert second_job.snapshot_ms == first_job.snapshot_ms
    assert {event.timestamp for _, event in events} == {first_job.snapshot_ms}


def test_a_resumed_job_refuses_a_changed_mapping(streams_settings, write_csv, run_job) -> None:
    settings = streams_settings()
    path = snapshot(write_csv)
    run_job(
        settings, lambda _: FailingSource(path, 1, RuntimeError("x")), mapping_of(), chunk_rows=50
    )
    with pytest.raises(ConfigError, match="the mapping changed"):
        run_job(settings, path, mapping_of(source="other"), chunk_rows=50)


def test_a_killed_job_resumes_with_no_gap(
    streams_settings, write_csv, run_job, tmp_path: Path
) -> None:
    settings = streams_settings()
    rows = 3_000
    path = snapshot(write_csv, rows)
    checkpoints = tmp_path / "checkpoints"
    child = spawn_job(settings, path, tmp_path, checkpoints, "killed", max_rate=600)
    checkpoint_file = checkpoints / "killed.json"
    try:
        wait_until(confirmed_beyond(checkpoint_file, 500), timeout=60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    killed_at = load_checkpoint(checkpoint_file)
    assert killed_at is not None
    assert not killed_at.completed
    assert killed_at.confirmed_line < rows + 1

    _, report = run_job(settings, path, mapping_of(), job_id="killed", checkpoint_dir=checkpoints)
    assert report.status is Status.COMPLETED
    assert report.resumed_after_line == killed_at.confirmed_line
    events = topic_events(settings)
    lines = event_lines(events)
    assert sorted(set(lines)) == [line for line in range(2, rows + 2) if line != 9]
    # Only rows produced after the last checkpoint write before the kill are repeated.
    repeated = [line for line, n in Counter(lines).items() if n > 1]
    assert all(line > killed_at.confirmed_line for line in repeated)
    assert len({event.timestamp for _, event in events}) == 1


def test_sigterm_stops_cleanly_and_the_rerun_finishes(
    streams_settings, write_csv, run_job, tmp_path: Path
) -> None:
    settings = streams_settings()
    rows = 2_000
    path = snapshot(write_csv, rows)
    checkpoints = tmp_path / "checkpoints"
    child = spawn_job(
        settings, path, tmp_path, checkpoints, "stopped", max_rate=500, stdout=subprocess.PIPE
    )
    checkpoint_file = checkpoints / "stopped.json"
    try:
        wait_until(confirmed_beyond(checkpoint_file, 200), timeout=60)
        child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130
    assert "resume with --job-id stopped" in output
    stopped = load_checkpoint(checkpoint_file)
    assert stopped is not None
    report = orjson.loads((checkpoints / "stopped.report.json").read_bytes())
    assert report["status"] == "interrupted"
    assert report["checkpoint"]["confirmed_line"] == stopped.confirmed_line

    _, resumed = run_job(settings, path, mapping_of(), job_id="stopped", checkpoint_dir=checkpoints)
    assert resumed.status is Status.COMPLETED
    lines = event_lines(topic_events(settings))
    assert sorted(set(lines)) == [line for line in range(2, rows + 2) if line != 9]
    assert all(line > stopped.confirmed_line for line, n in Counter(lines).items() if n > 1)


def test_stop_from_another_thread_ends_the_job_resumable(
    streams_settings, write_csv, run_job, tmp_path: Path
) -> None:
    """What a stopping service asks of its running jobs: end soon (even inside the throttle),
    confirm and checkpoint what was produced, and leave a rerun nothing but the rest."""
    settings = streams_settings()
    rows = 2_000
    path = snapshot(write_csv, rows)
    checkpoints = tmp_path / "checkpoints"
    stop = threading.Event()

    def make(_since: int | None) -> CsvSource:
        return CsvSource(path)

    options = JobOptions(job_id="asked", checkpoint_dir=checkpoints, max_rate=400, chunk_rows=50)
    job = BootstrapJob(settings, mapping_of(), make, options, stop=stop)
    reports: list[JobReport] = []
    runner = threading.Thread(target=lambda: reports.append(job.run()))
    runner.start()
    try:
        wait_until(lambda: job.stats.produced >= 300, timeout=60)
        stop.set()
        runner.join(30)  # without the stop the throttle alone takes ~5 s
    finally:
        stop.set()
        runner.join(60)
    (report,) = reports
    assert report.status is Status.INTERRUPTED
    assert 300 <= job.stats.produced < rows - 1
    checkpoint = load_checkpoint(checkpoints / "asked.json")
    assert checkpoint is not None
    assert not checkpoint.completed
    # Everything produced was confirmed before run() returned: the checkpoint ends the last
    # chunk produced, so the rerun repeats nothing.
    assert report.confirmed_line == checkpoint.confirmed_line == job.stats.total + 1
    produced_lines = event_lines(topic_events(settings))
    assert max(produced_lines) <= checkpoint.confirmed_line

    _, resumed = run_job(settings, path, mapping_of(), job_id="asked", checkpoint_dir=checkpoints)
    assert resumed.status is Status.COMPLETED
    lines = event_lines(topic_events(settings))
    assert sorted(lines) == [line for line in range(2, rows + 2) if line != 9]
