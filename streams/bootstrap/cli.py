"""``streams bootstrap``: the command's whole behaviour, callable without the CLI framework."""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.console import Console

from streams.bootstrap.checkpoint import DEFAULT_CHECKPOINT_DIR
from streams.bootstrap.convert import format_ms
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import load_mapping
from streams.bootstrap.open_source import open_source
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import JobReport, Status
from streams.bootstrap.sources import Source
from streams.errors import ConfigError, StreamsError
from streams.logs import configure_logging, mask_emails
from streams.settings import Settings

logger = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def run_bootstrap(
    source: str,
    mapping: Path,
    *,
    query: str | None = None,
    job_id: str | None = None,
    since: str | None = None,
    report: Path | None = None,
    max_reject_share: float = 0.01,
    snapshot_time: str | None = None,
    max_rate: float | None = None,
    checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR,
    settings: Settings | None = None,
    progress: bool | None = None,
    console: Console | None = None,
) -> int:
    """Run (or resume) one bootstrap job; the exit code says how it ended.

    0 done (also a rerun of a finished job id), 1 failed (source, delivery or broker: rerun
    with the same job id to continue when it had started), 2 bad usage or configuration, 3 more
    rejected rows than ``max_reject_share``, 130 interrupted (resumable like a failure). Only a
    job that started and stopped part-way is said to be resumable.
    """
    out = console or Console()
    err = console or Console(stderr=True)
    settings = settings or Settings()
    if not logging.getLogger().handlers:
        configure_logging(settings.log_level, log_format=settings.log_format)
    if job_id is None:
        job_id = _new_job_id()  # the start's log line and the summary name it
    with _sigterm_interrupts():
        try:
            result = _run(
                source, mapping, query=query, job_id=job_id, since=since,
                max_reject_share=max_reject_share, snapshot_time=snapshot_time,
                max_rate=max_rate, checkpoint_dir=checkpoint_dir, settings=settings,
                progress=progress, console=err,
            )  # fmt: skip
        except StreamsError as exc:  # before the job started: nothing to resume
            err.print(f"error: {mask_emails(str(exc))}", style="red", markup=False, highlight=False)
            return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED
        except KeyboardInterrupt:
            err.print("interrupted before the first row; nothing was produced", style="red")
            return EXIT_INTERRUPTED
    _finish(result, report or checkpoint_dir / f"{job_id}.report.json", out)
    return result.exit_code


def _run(
    source: str,
    mapping: Path,
    *,
    query: str | None,
    job_id: str,
    since: str | None,
    max_reject_share: float,
    snapshot_time: str | None,
    max_rate: float | None,
    checkpoint_dir: Path,
    settings: Settings,
    progress: bool | None,
    console: Console,
) -> JobReport:
    loaded = load_mapping(mapping)

    def make_source(since_ms: int | None) -> Source:
        return open_source(
            source,
            query=query,
            delimiter=loaded.csv_delimiter,
            encoding=loaded.encoding,
            timezone=loaded.timezone,
            modified_at_column=loaded.modified_at_column,
            since_ms=since_ms,
        )

    options = JobOptions(
        job_id=job_id,
        since=since,
        snapshot_time=snapshot_time,
        max_reject_share=max_reject_share,
        max_rate=max_rate,
        checkpoint_dir=checkpoint_dir,
    )
    job = BootstrapJob(
        settings,
        loaded,
        make_source,
        options,
        console=console,
        progress=console.is_terminal if progress is None else progress,
    )
    return job.run()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a container stop) ends the job like Ctrl-C: confirmed, checkpointed, resumable."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _finish(result: JobReport, report_path: Path, out: Console) -> None:
    if result.status is Status.ALREADY_COMPLETED:
        out.print(
            f"job {result.job_id} already completed ({result.previous_status}); nothing to do. "
            f"Its checkpoint: {result.checkpoint_path}",
            markup=False,
            highlight=False,
        )
        return
    result.write(report_path)
    result.print_summary(out)
    out.print(f"report: {report_path}", markup=False, highlight=False)
    if result.resumable:
        out.print(
            f"resume with --job-id {result.job_id}: it continues after line "
            f"{result.confirmed_line} (snapshot time {format_ms(result.snapshot_ms)} is kept)",
            markup=False,
            highlight=False,
        )


def _new_job_id() -> str:
    return f"bootstrap-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
