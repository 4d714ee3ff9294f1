"""The small file that makes a job resumable: ``.cache/bootstrap/<job-id>.json``.

It holds the job's original start and snapshot times (a resumed job keeps stamping rows with
the original snapshot time) and the highest line up to which every line of the source is done:
delivered (confirmed by the broker), rejected or skipped. Lines are a file's line numbers and a
query's row numbers. Written atomically: a temporary file, fsync, rename.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.atomic_files import write_atomic
from streams.errors import ConfigError

DEFAULT_CHECKPOINT_DIR = Path(".cache") / "bootstrap"
VERSION = 1
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(slots=True)
class Checkpoint:
    job_id: str
    source: str  # masked description, for people reading the file
    source_fingerprint: str
    mapping_fingerprint: str
    started_ms: int  # wall clock when the job first started: --since durations count from here
    snapshot_ms: int  # the update time of rows without an update_timestamp column
    snapshot_from: str  # "job_start", "file_mtime" or "option" (--snapshot-time)
    since_ms: int | None
    confirmed_line: int = 0  # every line up to this one is done
    completed: bool = False
    final_status: str | None = None  # of a completed job: what a rerun answers with
    updated_ms: int = 0
    version: int = VERSION

    def check_resumable(
        self, *, source_fingerprint: str, mapping_fingerprint: str, since_ms: int | None
    ) -> None:
        """A job resumes only with the source, mapping and --since it started with."""
        changed = [
            what
            for what, same in (
                (
                    "the source (path, size or modification time, or DSN and query)",
                    source_fingerprint == self.source_fingerprint,
                ),
                ("the mapping", mapping_fingerprint == self.mapping_fingerprint),
                ("--since", since_ms == self.since_ms),
            )
            if not same
        ]
        if changed:
            raise ConfigError(
                f"job {self.job_id} cannot resume: {' and '.join(changed)} changed since it "
                "started; rerun it unchanged or choose a new --job-id"
            )


def checkpoint_path(directory: Path, job_id: str) -> Path:
    if JOB_ID.fullmatch(job_id) is None:
        raise ConfigError(
            f"job id {job_id!r}: letters, digits, '.', '_' and '-' only, at most 128 characters"
        )
    return directory / f"{job_id}.json"


def load_checkpoint(path: Path) -> Checkpoint | None:
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable checkpoint {path}: {exc}") from exc
    if data.get("version") != VERSION:
        raise ConfigError(f"checkpoint {path} has version {data.get('version')}, not {VERSION}")
    try:
        return Checkpoint(**data)
    except TypeError as exc:
        raise ConfigError(f"checkpoint {path} is malformed: {exc}") from exc


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    checkpoint.updated_ms = time.time_ns() // 1_000_000
    write_atomic(path, orjson.dumps(asdict(checkpoint), option=orjson.OPT_INDENT_2))
