"""The wheel maturin builds from this repository: the Rust kernel and the whole Python package.

The build reuses native/target, where `make install` builds the kernel too, so after an
install it is cargo's up-to-date check and the packing; a cold build compiles PyO3 and the
crate's other dependencies first.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "streams"
PYPROJECT = ROOT / "pyproject.toml"
CARGO_TARGET_DIR = ROOT / "native" / "target"
# One abi3 build serves every CPython from 3.11 on; Windows names extensions .pyd.
NATIVE_MEMBER = "streams/_native" + (".pyd" if sys.platform == "win32" else ".abi3.so")
BUILD_TIMEOUT_S = 600

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 60)


def _unavailable(reason: str) -> NoReturn:
    # In CI a missing toolchain is a broken environment, not a reason to skip quietly.
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot build the wheel in CI: {reason}", pytrace=False)
    pytest.skip(f"cannot build the wheel: {reason}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("maturin") is None:
        _unavailable("maturin (a dev dependency) is not installed: pip install -e '.[dev]'")
    if shutil.which("cargo") is None:
        _unavailable("cargo is not on PATH (Rust 1.85+, https://rustup.rs)")
    out = tmp_path_factory.mktemp("wheel")
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


def members(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def dist_info(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info/"


def test_the_wheel_is_abi3_and_carries_the_rust_kernel(wheel: Path) -> None:
    python_tag, abi_tag = wheel.stem.split("-")[2:4]
    assert (python_tag, abi_tag) == ("cp311", "abi3")
    assert NATIVE_MEMBER in members(wheel)


def test_the_kernel_in_the_wheel_loads(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    # Run from the unpacked wheel so neither the work tree nor an installed copy answers.
    probe = "import streams._native as native; print(native.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / NATIVE_MEMBER


def test_the_wheel_has_every_python_module_and_the_typing_markers(wheel: Path) -> None:
    names = members(wheel)
    sources = {
        path.relative_to(ROOT).as_posix()
        for pattern in ("*.py", "*.pyi")
        for path in PACKAGE.rglob(pattern)
    }
    assert "streams/_native.pyi" in sources
    missing = sorted(sources - names)
    assert not missing, f"the wheel lacks {missing}"
    assert "streams/py.typed" in names
    # Only the package and its metadata: no tests, native sources or bytecode.
    stray = sorted(
        name
        for name in names
        if not name.startswith(("streams/", dist_info(wheel))) or "__pycache__" in name
    )
    assert not stray, f"the wheel carries {stray}"


def test_the_wheel_installs_the_streams_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(dist_info(wheel) + "entry_points.txt").decode()
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert dict(parser["console_scripts"]) == scripts
