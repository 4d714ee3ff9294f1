"""Build the project's wheel with maturin, once per test session (tests/test_deploy/conftest.py).

The build reuses native/target, where `make install` builds the kernel too, so after an
install it is cargo's up-to-date check and the packing; a cold build compiles PyO3 and the
crate's other dependencies first.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from tests.prerequisites import unavailable as prerequisite_unavailable

ROOT = Path(__file__).resolve().parents[2]
CARGO_TARGET_DIR = ROOT / "native" / "target"
BUILD_TIMEOUT_S = 600


def unavailable(reason: str) -> NoReturn:
    prerequisite_unavailable("a build tool", reason)


def build_wheel(out: Path) -> Path:
    """``maturin build --release`` into ``out``; skips (fails in CI) without maturin or cargo."""
    if importlib.util.find_spec("maturin") is None:
        unavailable("maturin (a dev dependency) is not installed: pip install -e '.[dev]'")
    if shutil.which("cargo") is None:
        unavailable("cargo is not on PATH (Rust 1.85+, https://rustup.rs)")
    # The interpreter pip hands maturin under `make install`: cargo then sees the same
    # environment and reuses its build instead of recompiling PyO3.
    command = [sys.executable, "-m", "maturin", "build", "--release"]
    command += ["--interpreter", sys.executable, "--out", str(out)]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "CARGO_TARGET_DIR": str(CARGO_TARGET_DIR)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode == 0, f"maturin build failed:\n{result.stderr[-4000:]}"
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]
