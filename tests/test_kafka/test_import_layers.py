"""Shared Kafka plumbing is imported downward only: neither it nor the connectors pull in the
processor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # this checkout's streams, not an installed one


@pytest.mark.parametrize(
    "module", ["streams.connect.worker", "streams.kafka.batch_delivery", "streams.kafka.queue_full"]
)
def test_the_module_imports_nothing_of_the_processor(module: str) -> None:
    # A fresh interpreter: this one has the processor loaded by other tests already.
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.startswith('streams.processor')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
