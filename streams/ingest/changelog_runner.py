"""``streams ingest changelog FILE``: parse, validate, produce, confirm, then report.

Success is reported only after the broker confirmed every event (a flushing confluent-kafka
producer). Malformed lines are skipped and listed with their numbers; the exit code says how
the run ended: 0 done, 1 delivery failed, 2 unreadable file, 3 more malformed lines than
``max_malformed_share``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import KafkaError, Producer
from rich.console import Console

from streams.bootstrap.progress import JobProgress
from streams.codecs.events import EventDecoder
from streams.errors import InvalidEventError
from streams.ingest.changelog import ChangeLogOptions, MalformedLineError, parse_lines, to_event
from streams.kafka.clients import producer_config
from streams.kafka.queue_full import produce_waiting
from streams.logs import mask_emails
from streams.settings import Settings

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DELIVERY, EXIT_USAGE, EXIT_TOO_MANY_MALFORMED = 0, 1, 2, 3
PROGRESS_EVERY = 1000
FLUSH_MARGIN_SECONDS = 10.0


@dataclass(slots=True)
class ChangeLogReport:
    path: str
    lines: int = 0  # non-blank lines
    events: int = 0  # produced
    delivered: int = 0  # confirmed by the broker
    by_change: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[int, str]] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def malformed_share(self) -> float:
        return len(self.malformed) / self.lines if self.lines else 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "path": self.path,
                "lines": self.lines,
                "events": self.events,
                "delivered": self.delivered,
                "by_change": dict(self.by_change),
                "malformed_count": len(self.malformed),
                "malformed": [{"line": n, "reason": r} for n, r in self.malformed],
                "delivery_errors": self.delivery_errors,
                "seconds": round(self.seconds, 3),
            },
            option=orjson.OPT_INDENT_2,
        )


def run_changelog(
    path: Path,
    settings: Settings,
    options: ChangeLogOptions,
    *,
    max_malformed_share: float = 0.01,
    show_malformed: int = 20,
    report_path: Path | None = None,
    console: Console | None = None,
    progress: bool | None = None,
) -> int:
    """Ingest one change-log file; prints progress and a summary, returns the exit code."""
    out = console or Console(stderr=True)
    report = ChangeLogReport(str(path))
    started = time.monotonic()
    try:
        total = _count_lines(path)
        with path.open("rb") as handle:
            failed = _produce(handle, settings, options, report, total, out, progress)
    except OSError as exc:
        out.print(f"error: cannot read {path}: {exc}", style="red", markup=False, highlight=False)
        return EXIT_USAGE
    report.seconds = time.monotonic() - started
    _print_summary(report, out, show_malformed)
    if report_path is not None:
        report_path.write_bytes(report.to_json())
        out.print(f"report: {report_path}", markup=False, highlight=False)
    if failed:
        return EXIT_DELIVERY
    if report.malformed_share > max_malformed_share:
        out.print(
            f"{report.malformed_share:.1%} of lines malformed > --max-malformed-share "
            f"{max_malformed_share:.1%}",
            style="red",
            highlight=False,
        )
        return EXIT_TOO_MANY_MALFORMED
    return EXIT_OK


def _produce(
    lines: Iterable[bytes],
    settings: Settings,
    options: ChangeLogOptions,
    report: ChangeLogReport,
    total: int,
    console: Console,
    progress: bool | None,
) -> bool:
    """Produce every good line's event and wait for all confirmations; True when one failed."""
    producer = Producer(producer_config(settings, **{"client.id": "profile-streams-changelog"}))
    decoder = EventDecoder.from_settings(settings)

    def on_delivery(error: KafkaError | None, _message: object) -> None:
        if error is None:
            report.delivered += 1
        elif len(report.delivery_errors) < 20:
            report.delivery_errors.append(error.str())

    enabled = console.is_terminal if progress is None else progress
    with JobProgress(console, enabled=enabled, total=total) as bar:
        for item in parse_lines(lines):
            report.lines += 1
            if isinstance(item, MalformedLineError):
                report.malformed.append((item.line_no, item.reason))
                continue
            try:
                record = decoder.encode(to_event(item, options), int(time.time() * 1000))
            except InvalidEventError as exc:  # e.g. a year the processor would refuse
                report.malformed.append((item.line_no, f"{exc.reason}: {mask_emails(exc.detail)}"))
                continue
            produce_waiting(producer, settings.input_topic, record.value, record.key, on_delivery)
            report.events += 1
            report.by_change[f"{item.action} {item.kind}"] += 1
            if report.lines % PROGRESS_EVERY == 0:
                producer.poll(0)
                bar.update(item.line_no, description="changelog")
        remaining = producer.flush(settings.delivery_timeout_ms / 1000 + FLUSH_MARGIN_SECONDS)
        bar.finish(total)
    if remaining:
        report.delivery_errors.append(f"{remaining} events unconfirmed at the flush timeout")
    return report.delivered < report.events


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _print_summary(report: ChangeLogReport, out: Console, show: int) -> None:
    rate = report.lines / report.seconds if report.seconds else 0.0
    changes = ", ".join(f"{k}={v}" for k, v in sorted(report.by_change.items())) or "none"
    out.print(
        f"{report.path}: {report.lines:,} lines, {report.events:,} events produced, "
        f"{report.delivered:,} confirmed by Kafka, {len(report.malformed):,} malformed "
        f"({changes}) in {report.seconds:.1f} s ({rate:,.0f} lines/s)",
        markup=False,
        highlight=False,
    )
    for line_no, reason in report.malformed[:show]:
        out.print(f"  malformed line {line_no}: {reason}", markup=False, highlight=False)
    if len(report.malformed) > show:
        out.print(f"  ... and {len(report.malformed) - show:,} more", highlight=False)
    for error in report.delivery_errors:
        out.print(f"  delivery failed: {error}", style="red", markup=False, highlight=False)
