"""What a job did: counters, capped lists of rejected and duplicate rows, the JSON report and the
summary table. Details never hold a value from the data, and are email-masked all the same."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from streams.atomic_files import write_atomic
from streams.bootstrap.convert import format_ms
from streams.logs import mask_emails

DEFAULT_ROW_CAP = 1000  # rejected and duplicate rows listed in a report
SUMMARY_EXAMPLES = 5


SNAPSHOT_FROM = {
    "job_start": "job start",
    "file_mtime": "file modification time",
    "option": "--snapshot-time",
}


class Status(StrEnum):
    COMPLETED = "completed"
    ALREADY_COMPLETED = "already_completed"  # a rerun of a finished job id: nothing to do
    TOO_MANY_REJECTIONS = "too_many_rejections"
    DELIVERY_FAILED = "delivery_failed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


# Statuses of a job that can stop part-way: then, unless a configuration error stopped it (a
# rerun would meet it again), a rerun with its job id continues after the last confirmed row.
RESUMABLE = frozenset({Status.FAILED, Status.DELIVERY_FAILED, Status.INTERRUPTED})

EXIT_CODES = {
    Status.COMPLETED: 0,
    Status.ALREADY_COMPLETED: 0,
    Status.TOO_MANY_REJECTIONS: 3,
    Status.DELIVERY_FAILED: 1,
    Status.FAILED: 1,
    Status.INTERRUPTED: 130,
}


@dataclass(slots=True)
class JobStats:
    """Counts over every row read in this run (rows before a resume point included)."""

    cap: int = DEFAULT_ROW_CAP
    total: int = 0
    produced: int = 0  # sent by this run
    replayed: int = 0  # valid rows before the resume point: delivered by an earlier run
    skipped: int = 0  # delta mode: not modified since --since
    deletes: int = 0
    opt_outs: int = 0
    rejected: int = 0
    duplicates: int = 0
    duplicates_same_time: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    duplicate_rows: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, reason: str, detail: str) -> None:
        self.rejected += 1
        self.rejected_by_reason[reason] += 1
        if len(self.rejected_rows) < self.cap:
            self.rejected_rows.append(
                {"line": line, "reason": reason, "detail": mask_emails(detail)}
            )

    def duplicate(self, line: int, kept_line: int, same_time: bool) -> None:
        self.duplicates += 1
        self.duplicates_same_time += same_time
        if len(self.duplicate_rows) < self.cap:
            self.duplicate_rows.append(
                {"line": line, "kept_line": kept_line, "same_time": same_time}
            )

    def reject_share(self) -> float:
        considered = self.total - self.skipped
        return self.rejected / considered if considered > 0 else 0.0


@dataclass(slots=True)
class JobReport:
    job_id: str
    source: str
    status: Status
    stats: JobStats
    snapshot_ms: int
    snapshot_from: str
    since_ms: int | None
    timestamp_column: str | None  # rows carry their own update time from this column
    max_reject_share: float
    elapsed: float
    resumed_after_line: int = 0
    confirmed_line: int = 0
    checkpoint_path: str = ""
    delivery_failures: int = 0
    delivery_errors: list[str] = field(default_factory=list)
    error: str | None = None
    previous_status: Status | None = None  # of the finished job an ALREADY_COMPLETED rerun met
    resumable: bool = False  # it started and stopped part-way: its job id continues it

    @property
    def exit_code(self) -> int:
        if self.status is Status.ALREADY_COMPLETED and self.previous_status is not None:
            return EXIT_CODES[self.previous_status]
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "job_id": self.job_id,
            "status": str(self.status),
            "error": mask_emails(self.error) if self.error else None,
            "source": self.source,
            "snapshot_time": format_ms(self.snapshot_ms),
            "snapshot_time_from": self.snapshot_from,
            "update_timestamp_column": self.timestamp_column,
            "since": format_ms(self.since_ms) if self.since_ms is not None else None,
            "resumed_after_line": self.resumed_after_line,
            "total": stats.total,
            "produced": stats.produced,
            "produced_before_resume": stats.replayed,
            "skipped_unchanged": stats.skipped,
            "removals": {"deletes": stats.deletes, "opt_outs": stats.opt_outs},
            "rejected": {
                "count": stats.rejected,
                "share": round(stats.reject_share(), 6),
                "max_share": self.max_reject_share,
                "by_reason": dict(stats.rejected_by_reason.most_common()),
                "rows": stats.rejected_rows,
                "rows_truncated": stats.rejected > len(stats.rejected_rows),
            },
            "duplicates": {
                "count": stats.duplicates,
                "same_time": stats.duplicates_same_time,
                "note": (
                    "every valid row is produced; the processor keeps the newest value per "
                    "property. With equal update times its tie-break (source priority, then "
                    "value) decides, not the line order"
                ),
                "rows": stats.duplicate_rows,
                "rows_truncated": stats.duplicates > len(stats.duplicate_rows),
            },
            "delivery": {"failed": self.delivery_failures, "errors": self.delivery_errors},
            "checkpoint": {
                "path": self.checkpoint_path,
                "confirmed_line": self.confirmed_line,
            },
            "elapsed_seconds": round(self.elapsed, 3),
            "rows_per_second": round(stats.total / self.elapsed, 1) if self.elapsed > 0 else None,
        }

    def write(self, path: Path) -> None:
        write_atomic(path, orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))

    def print_summary(self, console: Console) -> None:
        stats = self.stats
        rate = f"{stats.total / self.elapsed:,.0f} rows/s" if self.elapsed > 0 else "-"
        colour = "green" if self.exit_code == 0 else "red"
        table = Table(title=f"bootstrap {self.job_id}", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        rows: list[tuple[str, str]] = [
            ("status", f"[{colour}]{self.status}[/{colour}]"),
            (
                ("update times", f"column {self.timestamp_column!r}")
                if self.timestamp_column
                else (
                    "snapshot time",
                    f"{format_ms(self.snapshot_ms)} ({SNAPSHOT_FROM[self.snapshot_from]})",
                )
            ),
            ("rows read", f"{stats.total:,}"),
            ("produced", f"{stats.produced:,}"),
        ]
        if self.resumed_after_line:
            rows.append(("resumed after line", f"{self.resumed_after_line:,}"))
            rows.append(("produced before resume", f"{stats.replayed:,}"))
        if self.since_ms is not None:
            rows.append(("skipped (unchanged since)", f"{stats.skipped:,}"))
        if stats.deletes or stats.opt_outs:
            rows.append(("removals", f"{stats.deletes:,} deletes, {stats.opt_outs:,} opt-outs"))
        rows += [
            (
                "rejected",
                f"{stats.rejected:,} ({stats.reject_share():.2%}, max {self.max_reject_share:.2%})",
            ),
            ("duplicates", f"{stats.duplicates:,}"),
            ("elapsed", f"{self.elapsed:.1f} s"),
            ("rate", rate),
        ]
        if self.delivery_failures:
            rows.append(("delivery failures", f"[red]{self.delivery_failures:,}[/red]"))
        for label, value in rows:
            table.add_row(label, value)
        console.print(table)
        if stats.rejected:
            reasons = ", ".join(f"{r}={n:,}" for r, n in stats.rejected_by_reason.most_common())
            console.print(f"rejections by reason: {reasons}", markup=False, highlight=False)
            for row in stats.rejected_rows[:SUMMARY_EXAMPLES]:
                console.print(
                    f"  line {row['line']}: {row['reason']}: {row['detail']}",
                    markup=False,
                    highlight=False,
                )
        if self.error:
            console.print(f"error: {mask_emails(self.error)}", style="red", markup=False)
