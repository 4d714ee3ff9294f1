"""The wheel maturin builds from this repository (tests/test_deploy/wheel_build.py): the Rust
kernel, the whole Python package and the data files it reads."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.test_deploy.wheel_build import BUILD_TIMEOUT_S, ROOT

PACKAGE = ROOT / "streams"
PYPROJECT = ROOT / "pyproject.toml"
# One abi3 build serves every CPython from 3.11 on; Windows names extensions .pyd.
NATIVE_MEMBER = "streams/_native" + (".pyd" if sys.platform == "win32" else ".abi3.so")

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 60)


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


def test_the_wheel_carries_the_schemas_and_the_brokers_pom(wheel: Path) -> None:
    data = [*sorted(PACKAGE.glob("schemas/**/*.avsc")), PACKAGE / "broker" / "pom.xml"]
    assert {path.name for path in data} >= {
        "profile_change.avsc",
        "profile_upsert.avsc",
        "profile_change.v0.avsc",
        "pom.xml",
    }
    with zipfile.ZipFile(wheel) as archive:
        for path in data:
            member = path.relative_to(ROOT).as_posix()
            assert archive.read(member) == path.read_bytes(), member
