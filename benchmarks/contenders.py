"""The contenders and how to run one in a subprocess of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Result, Spec

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_ALLOWANCE = 90.0
STOP_TIMEOUT = 30.0
POLL_SECONDS = 0.1
LOG_TAIL_LINES = 30


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    module: str
    variant: str = ""
    # Subprocesses that keep serving after they report (Faust workers) are stopped by us.
    long_running: bool = False


PASSTHROUGH = Contender(
    "passthrough", "raw passthrough (confluent-kafka)", "benchmarks.passthrough"
)
FAUST_NAIVE = Contender(
    "faust-naive",
    "naive Faust agent (table write + send per event)",
    "benchmarks.faust_agents",
    "naive",
    long_running=True,
)
FAUST_BATCH = Contender(
    "faust-batch",
    "Faust take_events(5000), orjson decode only: Faust's ceiling",
    "benchmarks.faust_agents",
    "batch",
    long_running=True,
)
QUIX = Contender(
    "quix",
    "Quix Streams (stateful apply, RocksDB state, to_topic)",
    "benchmarks.quix_app",
)
PROCESSOR = Contender("processor", "Profile Streams processor (full path)", "benchmarks.processor")
FAUST_ENGINE = Contender(
    "faust-engine",
    "Profile Streams processor, Faust engine (streams worker --engine faust)",
    "benchmarks.faust_engine",
    long_running=True,
)
CONTENDERS = (PASSTHROUGH, FAUST_NAIVE, FAUST_BATCH, QUIX, PROCESSOR, FAUST_ENGINE)


def run_contender(
    contender: Contender,
    spec: Spec,
    log_path: Path,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run one contender to completion (or its time limit); never leaves the process behind.
    ``python``: the interpreter to run it with (else this one); the repository is its cwd,
    so ``-m`` finds the benchmark's modules either way. ``env``: variables over ours."""
    result_path = Path(spec.result_path)
    result_path.unlink(missing_ok=True)
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [python or sys.executable, "-m", contender.module, spec.to_json()],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + spec.timeout + STARTUP_ALLOWANCE
        while not result_path.exists():
            if process.poll() is not None:
                break
            if time.monotonic() > deadline:
                return Result(0, 0.0, error=_with_log("no result in time", log_path))
            time.sleep(POLL_SECONDS)
        if not result_path.exists():
            # One last look: the process may have written and exited between two polls.
            return Result(
                0,
                0.0,
                error=_with_log(
                    f"exited with code {process.returncode} without a result", log_path
                ),
            )
        result = Result.load(result_path)
        if result.error is not None:
            result.error = _with_log(result.error, log_path)
        return result
    finally:
        _stop(process, graceful=contender.long_running)


def _stop(process: subprocess.Popen[bytes], *, graceful: bool) -> None:
    if process.poll() is not None:
        return
    if not graceful:
        # A one-shot contender exits by itself right after writing its result.
        try:
            process.wait(STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            pass
    _signal(process, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait()


def _signal(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The child leads its own session: its process group holds it and anything it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _with_log(message: str, log_path: Path) -> str:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return message
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return f"{message}\n--- end of {log_path} ---\n{tail}" if tail else message
