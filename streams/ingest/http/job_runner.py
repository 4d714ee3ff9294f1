"""Jobs of the jobs API: their records (kept on disk) and the bootstrap and export they run.

The bootstrap and the export are synchronous confluent-kafka code, so each job runs in a worker
thread; its record is read by the event loop while it runs (progress from the bootstrap's own
counters). A record is written to ``state_dir`` at every state change, so ``GET /jobs/{id}``
still answers for finished jobs after a restart; a job the restart cut short is marked failed.
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from confluent_kafka import Consumer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from rich.console import Console

from streams.atomic_files import write_atomic
from streams.bootstrap.delivery import DEFAULT_PRODUCERS
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import load_mapping
from streams.bootstrap.open_source import open_source
from streams.bootstrap.plan import DEFAULT_CHUNK_ROWS, JobOptions
from streams.bootstrap.report import Status
from streams.bootstrap.sources import Source
from streams.errors import StreamsError
from streams.export import export_profiles
from streams.ingest.http.job_bodies import Job, JobState, JobType, Links
from streams.kafka.clients import reader_config
from streams.logs import redact
from streams.settings import Settings

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the service stopped while the job ran; start it again"
STOPPED = "stopped: the service stopped before the job ended"
NOT_STARTED = "not started: the service stopped before the job began; start it again"
_RUNTIME_FIELDS = ("progress", "stop")  # not written to disk


class BootstrapJobConfig(BaseModel):
    """``[jobs.bootstrap.<name>]``: what ``streams bootstrap`` takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SecretStr  # a file path or a PostgreSQL DSN, which carries a password
    mapping: Path
    query: str | None = None
    since: str | None = None
    snapshot_time: str | None = None
    max_reject_share: float = Field(default=0.01, ge=0.0, le=1.0)
    max_rate: float | None = Field(default=None, gt=0)
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1)
    producers: int = Field(default=DEFAULT_PRODUCERS, ge=1)


class ExportJobConfig(BaseModel):
    """``[jobs.export.<name>]``; ``output`` may name ``{job_id}`` and ``{date}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "jsonl"]
    output: str = Field(min_length=1)
    include_timestamps: bool = False


@dataclass(slots=True)
class JobRecord:
    id: str
    type: JobType
    config: str
    params: dict[str, Any]
    state: JobState = JobState.QUEUED
    created_at: int = 0  # epoch ms
    started_at: int | None = None
    finished_at: int | None = None
    records_processed: int | None = None
    total_records: int | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    progress: Callable[[], int] | None = field(default=None, repr=False)  # while running
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    def view(self) -> Job:
        """What ``GET /jobs/{id}`` answers; progress is live while the job runs."""
        progress = self.progress
        processed = progress() if progress is not None else self.records_processed
        return Job(
            id=self.id,
            type=self.type,
            config=self.config,
            params=self.params,
            state=self.state,
            records_processed=processed,
            total_records=self.total_records,
            created_at=_iso(self.created_at) or "",
            started_at=_iso(self.started_at),
            finished_at=_iso(self.finished_at),
            report=self.report,
            error=self.error,
            links=Links(self=f"/jobs/{self.id}"),
        )

    def to_bytes(self) -> bytes:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _RUNTIME_FIELDS:
            del data[name]
        return orjson.dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes) -> JobRecord:
        data = orjson.loads(raw)
        data["state"] = JobState(data["state"])
        return cls(**data)


def new_job_id(kind: JobType) -> str:
    return f"{kind}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_error(exc: BaseException) -> str:
    """The message without passwords, secrets, full email addresses or control characters."""
    return redact(str(exc) or type(exc).__name__)[:2000]


class JobStore:
    """One JSON file per job in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, record: JobRecord) -> None:
        write_atomic(self.directory / f"{record.id}.json", record.to_bytes())

    def load(self) -> dict[str, JobRecord]:
        records: dict[str, JobRecord] = {}
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob("*.json")):
            try:
                record = JobRecord.from_bytes(path.read_bytes())
            except (OSError, ValueError, TypeError, KeyError) as exc:
                logger.warning("job record unreadable path=%s error=%s", path, exc)
                continue
            if record.active:
                record.state, record.error = JobState.FAILED, INTERRUPTED
                record.finished_at = record.finished_at or now_ms()
                self.save(record)
            records[record.id] = record
        return records


class JobFailedError(StreamsError):
    """The job ran to an end that is not success; the message says which."""


def run_bootstrap_job(
    settings: Settings, config: BootstrapJobConfig, record: JobRecord, checkpoint_dir: Path
) -> None:
    mapping = load_mapping(config.mapping)
    spec = config.source.get_secret_value()

    def make_source(since_ms: int | None) -> Source:
        source = open_source(
            spec,
            query=config.query,
            delimiter=mapping.csv_delimiter,
            encoding=mapping.encoding,
            timezone=mapping.timezone,
            modified_at_column=mapping.modified_at_column,
            since_ms=since_ms,
        )
        record.total_records = source.estimate_total()
        return source

    options = JobOptions(
        job_id=record.params.get("resume", record.id),  # a resumed job continues its checkpoint
        since=record.params.get("since", config.since),
        snapshot_time=config.snapshot_time,
        max_reject_share=config.max_reject_share,
        max_rate=record.params.get("max_rate", config.max_rate),
        checkpoint_dir=checkpoint_dir,
        chunk_rows=config.chunk_rows,
        producers=config.producers,
    )
    job = BootstrapJob(settings, mapping, make_source, options, stop=record.stop)
    record.progress = lambda: job.stats.total
    report = job.run()
    record.records_processed = job.stats.total
    record.report = report.to_dict()
    if report.status is Status.INTERRUPTED:
        raise JobFailedError(
            f"{STOPPED}; rows up to line {report.confirmed_line:,} are confirmed: resume it "
            f'with {{"config": "{record.config}", "resume": "{record.id}"}}'
        )
    if report.status is Status.TOO_MANY_REJECTIONS:
        raise JobFailedError(
            f"too many rejected rows: {report.stats.reject_share():.2%} > "
            f"max {config.max_reject_share:.2%} (see report.rejected)"
        )
    if report.status is not Status.COMPLETED:
        raise JobFailedError(f"{report.status}: {report.error or 'see the report'}")


def changelog_size(settings: Settings) -> int:
    """Records in the changelog now: what the export reads (a compacted topic: at most)."""
    topic = settings.changelog_topic
    consumer = Consumer(reader_config(settings, **{"group.id": f"jobs-{uuid.uuid4().hex}"}))
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            total += max(high - low, 0)
        return total
    finally:
        consumer.close()


def run_export_job(settings: Settings, config: ExportJobConfig, record: JobRecord) -> None:
    output = Path(
        config.output.format(job_id=record.id, date=time.strftime("%Y-%m-%d", time.gmtime()))
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    record.total_records = changelog_size(settings)
    summary = export_profiles(
        settings,
        config.format,
        include_timestamps=config.include_timestamps,
        output=output,
        console=Console(file=io.StringIO()),  # the progress bar is for terminals
        on_progress=lambda read: setattr(record, "records_processed", read),
        stop=record.stop,
    )
    record.records_processed = summary.records_read
    record.report = {
        "output": str(output),
        "format": config.format,
        "include_timestamps": config.include_timestamps,
        "profiles": summary.profiles,
        "records_read": summary.records_read,
        "seconds": round(summary.seconds, 3),
    }
