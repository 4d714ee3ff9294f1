"""What the orchestrator and the contender subprocesses exchange: a spec in, a result out.

A contender runs as ``python -m benchmarks.<module> '<spec json>'`` and writes its result as
JSON to ``spec.result_path`` (atomically, via a rename), so the parent never parses a
half-written file and stdout stays free for the contender's own logging.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PARTITIONS = 8


@dataclass(frozen=True, slots=True)
class Spec:
    """One contender run: which input to read and how many records count."""

    bootstrap: str
    input_topic: str
    events: int
    run_id: str
    work_dir: str
    result_path: str
    variant: str = ""
    timeout: float = 300.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> Spec:
        args = sys.argv[1:] if argv is None else argv
        if len(args) != 1:
            raise SystemExit("usage: python -m benchmarks.<contender> '<spec json>'")
        return cls(**json.loads(args[0]))


@dataclass(slots=True)
class Result:
    """What one contender measured; ``error`` set means the contender failed."""

    events: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def load(cls, path: Path) -> Result:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data)


def write_result(spec: Spec, result: Result) -> None:
    target = Path(spec.result_path)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(json.dumps(asdict(result)), encoding="utf-8")
    os.replace(scratch, target)


def contender_main(run: Callable[[Spec], Result]) -> None:
    """Entry point of a contender subprocess: a failure becomes a result, never a traceback."""
    spec = Spec.from_argv()
    try:
        result = run(spec)
    except Exception as exc:
        result = Result(0, 0.0, error=f"{type(exc).__name__}: {exc}")
    write_result(spec, result)


def now() -> float:
    return time.perf_counter()
