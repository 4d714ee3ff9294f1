"""One snapshot bootstrap: read, validate, produce change events, confirm, checkpoint, report.

Rows without an update_timestamp column carry the job's snapshot time (its start, or the file's
modification time when that is earlier), fixed in the checkpoint on the first run, so neither a
slow job nor a resumed one can overwrite fresher live updates. A resumed job re-reads and
re-validates the rows it already delivered (for a complete report) without producing them.
Chunks are read, converted and their ids noted for the duplicate report on a reader thread while
the main thread produces the previous one (:mod:`streams.bootstrap.prefetch`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from streams.bootstrap.checkpoint import Checkpoint, checkpoint_path, save_checkpoint
from streams.bootstrap.convert import format_ms
from streams.bootstrap.dedupe import DuplicateIndex
from streams.bootstrap.delivery import ChunkedDelivery
from streams.bootstrap.files import CsvSource, JsonlSource
from streams.bootstrap.hints import check_columns
from streams.bootstrap.mapping import BootstrapMapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.plan import JobOptions, SourceFactory, plan_job
from streams.bootstrap.postgres import PostgresSource
from streams.bootstrap.prefetch import Prefetch
from streams.bootstrap.progress import JobProgress
from streams.bootstrap.report import RESUMABLE, JobReport, JobStats, Status
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, RowLimits
from streams.bootstrap.sources import Chunk, Source
from streams.errors import ConfigError, DeliveryError, StreamsError
from streams.kafka.queue_full import produce_all
from streams.settings import Settings

logger = logging.getLogger(__name__)

CHUNKS_PER_SECOND_THROTTLED = 10

__all__ = ["BootstrapJob", "JobOptions"]


class BootstrapJob:
    def __init__(
        self,
        settings: Settings,
        mapping: BootstrapMapping,
        make_source: SourceFactory,
        options: JobOptions,
        *,
        console: Console | None = None,
        progress: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        """``stop``: set by another thread to end the job early, as :meth:`stop` does."""
        self.settings = settings
        self.mapping = mapping
        self.options = options
        self.path = checkpoint_path(options.checkpoint_dir, options.job_id)
        self._make_source = make_source
        self._console = console
        self._progress_enabled = progress
        self.stats = JobStats(cap=options.row_cap)
        self.snapshot_ms: int | None = None  # known once run() has prepared the job
        # The last line of the last chunk produced in full: delivery.finish() confirms up to it.
        self._done_line = 0
        self._saved = False  # the checkpoint exists on disk
        self._stop = stop if stop is not None else threading.Event()

    def stop(self) -> None:
        """End a running job after the chunk it is producing (from any thread): what was
        produced is confirmed and checkpointed, the report says interrupted, and a rerun with
        the same job id continues after the last confirmed row."""
        self._stop.set()

    def run(self) -> JobReport:
        """Run or resume the job. Before it starts (its checkpoint written) an error or Ctrl-C
        is raised and leaves no checkpoint; after, the report says how it ended."""
        started = time.monotonic()
        plan = plan_job(self.settings, self.mapping, self._make_source, self.options, self.path)
        checkpoint, source = plan.checkpoint, plan.source
        self._saved = not plan.fresh
        self.snapshot_ms = checkpoint.snapshot_ms
        report = JobReport(
            job_id=checkpoint.job_id,
            source=source.description,
            status=Status.COMPLETED,
            stats=self.stats,
            snapshot_ms=checkpoint.snapshot_ms,
            snapshot_from=checkpoint.snapshot_from,
            since_ms=checkpoint.since_ms,
            timestamp_column=(
                self.mapping.update_timestamp.from_column if self.mapping.update_timestamp else None
            ),
            max_reject_share=self.options.max_reject_share,
            elapsed=0.0,
            resumed_after_line=checkpoint.confirmed_line,
            confirmed_line=checkpoint.confirmed_line,
            checkpoint_path=str(self.path),
        )
        if checkpoint.completed:
            report.status = Status.ALREADY_COMPLETED
            report.previous_status = Status(checkpoint.final_status or Status.COMPLETED)
            return report
        delivery = ChunkedDelivery(
            self.settings,
            client_id=f"bootstrap-{checkpoint.job_id}",
            confirmed_line=checkpoint.confirmed_line,
            producers=self.options.producers,
        )
        finished = misconfigured = False
        try:
            with (
                source,
                JobProgress(
                    self._console,
                    enabled=self._progress_enabled,
                    total=source.estimate_total() if self._progress_enabled else None,
                ) as progress,
            ):
                duplicates = (
                    DuplicateIndex(self.stats.duplicate) if self.mapping.detect_duplicates else None
                )
                _check_columns(self.mapping, source)
                converter = self._converter(source, checkpoint, duplicates)
                if not self._saved:
                    save_checkpoint(self.path, checkpoint)  # fixes the snapshot time
                    self._saved = True
                logger.info(
                    "bootstrap start job_id=%s source=%s snapshot=%s resume_after_line=%d",
                    checkpoint.job_id,
                    source.description,
                    format_ms(checkpoint.snapshot_ms),
                    checkpoint.confirmed_line,
                )
                if self._chunks(source, converter, duplicates, delivery, checkpoint, progress):
                    report.status = Status.INTERRUPTED
                else:
                    finished = True
                    progress.finish(self.stats.total)
        except KeyboardInterrupt:
            if not self._saved:
                raise  # before the job started: there is nothing to resume
            report.status = Status.INTERRUPTED
        except StreamsError as exc:
            if not self._saved:
                raise  # before the job started: the caller says what is wrong, no resume
            report.status, report.error = Status.FAILED, str(exc)
            # A resume would meet a configuration error again (and refuses a changed mapping).
            misconfigured = isinstance(exc, ConfigError)
        except Exception as exc:
            logger.exception("bootstrap job_id=%s failed", checkpoint.job_id)
            report.status, report.error = Status.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self._settle(delivery, checkpoint, report)
            finally:
                delivery.close()
        share = self.stats.reject_share()
        if finished and report.status is Status.COMPLETED and share > self.options.max_reject_share:
            report.status = Status.TOO_MANY_REJECTIONS
        if checkpoint.completed:
            checkpoint.final_status = str(report.status)
            save_checkpoint(self.path, checkpoint)
        report.resumable = self._saved and report.status in RESUMABLE and not misconfigured
        report.elapsed = time.monotonic() - started
        logger.info(
            "bootstrap end job_id=%s status=%s rows=%d produced=%d rejected=%d seconds=%.1f",
            checkpoint.job_id,
            report.status,
            self.stats.total,
            self.stats.produced,
            self.stats.rejected,
            report.elapsed,
        )
        return report

    def _converter(
        self, source: Source, checkpoint: Checkpoint, duplicates: DuplicateIndex | None
    ) -> NativeConverter | ChunkConverter:
        """The native converter for files, the Python one for database rows."""
        now_ms = time.time_ns() // 1_000_000
        limits = RowLimits(
            max_timestamp_ms=now_ms + round(self.settings.max_clock_skew_seconds * 1000),
            max_event_bytes=self.settings.max_event_bytes,
        )
        common: dict[str, Any] = {
            "job_id": checkpoint.job_id,
            "snapshot_ms": checkpoint.snapshot_ms,
            "since_ms": checkpoint.since_ms,
            "limits": limits,
        }
        if isinstance(source, CsvSource | JsonlSource):
            index = duplicates.native if duplicates is not None else None
            return NativeConverter(self.mapping, source, index=index, **common)
        return ChunkConverter(self.mapping, source.columns, text_source=source.text, **common)

    def _chunks(
        self,
        source: Source,
        converter: NativeConverter | ChunkConverter,
        duplicates: DuplicateIndex | None,
        delivery: ChunkedDelivery,
        checkpoint: Checkpoint,
        progress: JobProgress,
    ) -> bool:
        """Produce every chunk; True when :meth:`stop` ended the job first."""
        stats, options = self.stats, self.options
        chunk_rows = options.chunk_rows
        if options.max_rate is not None:
            per_chunk = int(options.max_rate / CHUNKS_PER_SECOND_THROTTLED)
            chunk_rows = max(1, min(chunk_rows, per_chunk))
        resume_line = checkpoint.confirmed_line
        run_started = last_saved = time.monotonic()
        converted = _converted(source, converter, duplicates, chunk_rows)
        with (
            _finishing(duplicates),  # after the reader thread has stopped
            Prefetch(converted, name=f"bootstrap-{checkpoint.job_id}-read") as ahead,
        ):
            for chunk, out in ahead:
                if self._stop.is_set():
                    return True
                if self._deliver(chunk, out, delivery, resume_line):
                    return False
                progress.update(stats.total)
                if options.max_rate is not None:
                    _throttle(run_started, stats.produced, options.max_rate, self._stop)
                now = time.monotonic()
                if now - last_saved >= options.checkpoint_interval:
                    delivery.confirm()
                    self._save(delivery, checkpoint)
                    last_saved = time.monotonic()
                    if delivery.failed:
                        return False
        return False

    def _deliver(
        self,
        chunk: Chunk,
        out: ChunkOutput,
        delivery: ChunkedDelivery,
        resume_line: int,
    ) -> bool:
        """Count, report and produce one converted chunk; True when delivery failed."""
        stats = self.stats
        stats.total += chunk.row_count + len(chunk.bad)
        for line, reason, detail in chunk.bad:
            stats.reject(line, reason, detail)
        for line, reason, detail in out.rejected:
            stats.reject(line, reason, detail)
        stats.skipped += out.skipped
        stats.deletes += out.deletes
        stats.opt_outs += out.opt_outs
        payloads, keys = out.payloads, out.keys
        if resume_line and out.lines and min(out.lines) <= resume_line:
            # Rows up to resume_line were delivered by an earlier run (lines are not sorted:
            # rows that took the dict path come last).
            fresh = [i for i, line in enumerate(out.lines) if line > resume_line]
            stats.replayed += len(out.lines) - len(fresh)
            payloads, keys = [payloads[i] for i in fresh], [keys[i] for i in fresh]
        if payloads:
            produce_all(delivery.producer, self.settings.input_topic, payloads, keys)
            stats.produced += len(payloads)
        self._done_line = chunk.last_line
        delivery.end_chunk(chunk.last_line)
        return delivery.failed

    def _settle(self, delivery: ChunkedDelivery, checkpoint: Checkpoint, report: JobReport) -> None:
        """Wait for what was produced, then record how far the confirmed prefix got."""
        try:
            delivery.finish(self._done_line)
        except DeliveryError as exc:
            report.status, report.error = Status.DELIVERY_FAILED, str(exc)
        except KeyboardInterrupt:
            report.status = Status.INTERRUPTED
        if delivery.failed:
            report.status = Status.DELIVERY_FAILED
            report.error = report.error or (
                f"{delivery.failed_records} records not delivered; rerun with "
                f"--job-id {checkpoint.job_id} to continue after line {delivery.confirmed_line}"
            )
        report.delivery_failures = delivery.failed_records
        report.delivery_errors = list(delivery.error_messages)
        if report.status is Status.COMPLETED:
            checkpoint.completed = True
        self._save(delivery, checkpoint)
        report.confirmed_line = checkpoint.confirmed_line

    def _save(self, delivery: ChunkedDelivery, checkpoint: Checkpoint) -> None:
        checkpoint.confirmed_line = delivery.confirmed_line
        if self._saved:
            save_checkpoint(self.path, checkpoint)


def _converted(
    source: Source,
    converter: NativeConverter | ChunkConverter,
    duplicates: DuplicateIndex | None,
    size: int,
) -> Iterator[tuple[Chunk, ChunkOutput]]:
    """The reader thread's work: read and convert each chunk and note its ids for the duplicate
    report (a file's mostly without the GIL, which the producing thread needs)."""
    if isinstance(converter, NativeConverter):
        yield from converter.chunks(size)  # ids noted as it converts
        return
    assert isinstance(source, PostgresSource)
    for chunk in source.chunks(size):
        out = converter.convert(chunk.rows, chunk.lines)
        if duplicates is not None:
            duplicates.add(out.keys, out.stamps, out.lines)
        yield chunk, out


def _check_columns(mapping: BootstrapMapping, source: Source) -> None:
    if source.columns is not None:
        delimiter = source.delimiter if isinstance(source, CsvSource) else None
        check_columns(mapping, source.columns, where=source.description, delimiter=delimiter)


@contextmanager
def _finishing(duplicates: DuplicateIndex | None) -> Iterator[None]:
    """Duplicates among the rows read are reported however the loop ends."""
    try:
        yield
    finally:
        if duplicates is not None:
            duplicates.finish()


def _throttle(started: float, produced: int, max_rate: float, stop: threading.Event) -> None:
    ahead = produced / max_rate - (time.monotonic() - started)
    if ahead > 0:
        stop.wait(ahead)  # a stop does not wait for the throttle
