"""Before the first row: the job's options, its snapshot time and whether it resumes.

The snapshot time is the update time of every row without an update_timestamp column: the
job's start, or the file's modification time when that is earlier (the data cannot be younger
than the file), or ``--snapshot-time``. A resumed job takes it, and the ``--since`` instant,
from its checkpoint, so a rerun never stamps rows with a later time than the first run did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.bootstrap.checkpoint import DEFAULT_CHECKPOINT_DIR, Checkpoint, load_checkpoint
from streams.bootstrap.convert import ConversionError, epoch_ms, parse_since
from streams.bootstrap.delivery import DEFAULT_PRODUCERS
from streams.bootstrap.mapping import BootstrapMapping
from streams.bootstrap.report import DEFAULT_ROW_CAP
from streams.bootstrap.sources import Source
from streams.errors import ConfigError
from streams.settings import Settings

DEFAULT_CHUNK_ROWS = 20_000

SourceFactory = Callable[[int | None], Source]
"""Builds the source for a job; gets the resolved ``--since`` (epoch ms) for SQL filtering."""


@dataclass(frozen=True, slots=True)
class JobOptions:
    job_id: str
    since: str | None = None  # "24h" back from the job's first start, or an ISO-8601 instant
    snapshot_time: str | None = None  # overrides the snapshot time: UNIX seconds or ISO-8601
    max_reject_share: float = 0.01
    max_rate: float | None = None  # rows per second, to spare a busy cluster
    checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    checkpoint_interval: float = 1.0  # seconds between confirmations (checkpoint writes)
    row_cap: int = DEFAULT_ROW_CAP  # rejected and duplicate rows listed in the report
    producers: int = DEFAULT_PRODUCERS

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_reject_share <= 1.0:
            raise ConfigError("--max-reject-share must be between 0 and 1")
        if self.max_rate is not None and self.max_rate <= 0:
            raise ConfigError("--max-rate must be positive")
        if self.chunk_rows < 1 or self.row_cap < 0 or self.producers < 1:
            raise ConfigError("chunk_rows and producers must be >= 1, row_cap >= 0")


@dataclass(frozen=True, slots=True)
class Plan:
    checkpoint: Checkpoint
    source: Source
    fresh: bool  # a new job: its checkpoint is not written yet


def plan_job(
    settings: Settings,
    mapping: BootstrapMapping,
    make_source: SourceFactory,
    options: JobOptions,
    path: Path,
) -> Plan:
    """Resolve times, build the source and load (and check) or create the checkpoint."""
    now_ms = time.time_ns() // 1_000_000
    checkpoint = load_checkpoint(path)
    started_ms = checkpoint.started_ms if checkpoint else now_ms
    try:
        since_ms = parse_since(options.since, started_ms, mapping.tz) if options.since else None
        override = (
            epoch_ms(options.snapshot_time, mapping.tz, "bad_snapshot_time")
            if options.snapshot_time
            else None
        )
    except ConversionError as exc:
        raise ConfigError(exc.detail) from exc
    if since_ms is not None and mapping.modified_at_column is None:
        raise ConfigError("--since needs modified_at_column in the mapping")
    if override is not None and override > now_ms + settings.max_clock_skew_seconds * 1000:
        raise ConfigError("--snapshot-time is in the future")
    if mapping.property_count() > settings.max_properties:
        raise ConfigError(
            f"the mapping writes {mapping.property_count()} properties, more than "
            f"max_properties={settings.max_properties}"
        )
    source = make_source(since_ms)
    if checkpoint is not None:
        checkpoint.check_resumable(
            source_fingerprint=source.fingerprint(),
            mapping_fingerprint=mapping.fingerprint(),
            since_ms=since_ms,
        )
        return Plan(checkpoint, source, fresh=False)
    snapshot_ms, snapshot_from = now_ms, "job_start"
    modified = source.modified_ms()
    if override is not None:
        snapshot_ms, snapshot_from = override, "option"
    elif modified is not None and modified < now_ms:
        snapshot_ms, snapshot_from = modified, "file_mtime"
    checkpoint = Checkpoint(
        job_id=options.job_id,
        source=source.description,
        source_fingerprint=source.fingerprint(),
        mapping_fingerprint=mapping.fingerprint(),
        started_ms=started_ms,
        snapshot_ms=snapshot_ms,
        snapshot_from=snapshot_from,
        since_ms=since_ms,
    )
    return Plan(checkpoint, source, fresh=True)
