"""The interpreter the Quix Streams contender runs in: a virtualenv of its own.

quixstreams pins confluent-kafka < 2.13, pydantic < 2.14 and pydantic-settings < 2.16, older
than what the project runs on, so it cannot share the project's environment without
downgrading the libraries the processor is measured on. Its contender therefore runs in
``.cache/quix/<version>/venv`` (created once with ``pip``, like the broker's jars), with the
repository on its path for the benchmark's own modules; ``$STREAMS_BENCH_QUIX_PYTHON`` names
another interpreter that has quixstreams instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
QUIX_VERSION = "3.28.1"  # the version the benchmark was written and checked against
PYTHON_ENV = "STREAMS_BENCH_QUIX_PYTHON"
COMPLETE_MARKER = ".complete"
INSTALL_TIMEOUT = 900.0
LOG_TAIL_CHARS = 2000


class QuixUnavailableError(RuntimeError):
    """No interpreter with quixstreams could be found or made."""


def venv_dir() -> Path:
    return REPO_ROOT / ".cache" / "quix" / QUIX_VERSION / "venv"


def ensure_quix_python() -> str:
    """An interpreter with quixstreams: ``$STREAMS_BENCH_QUIX_PYTHON``, else the cached
    virtualenv, created on first use."""
    configured = os.environ.get(PYTHON_ENV)
    if configured:
        return configured
    venv = venv_dir()
    python = venv / "bin" / "python"
    if (venv / COMPLETE_MARKER).is_file():
        return str(python)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", f"quixstreams=={QUIX_VERSION}"],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise QuixUnavailableError(f"{' '.join(step[:4])}: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-LOG_TAIL_CHARS:]
            raise QuixUnavailableError(
                f"{' '.join(step[:4])} exited with {done.returncode}; set {PYTHON_ENV} to an "
                f"interpreter with quixstreams=={QUIX_VERSION} instead\n{output}"
            )
    (venv / COMPLETE_MARKER).touch()
    return str(python)
