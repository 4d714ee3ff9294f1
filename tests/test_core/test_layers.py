"""The package's layers hold: pyproject.toml's ``[tool.importlinter]`` contracts say that stages
import shared plumbing downward only and that no sibling modules or packages import each other
in a circle; import-linter checks every import, inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_imports_keep_the_layers_and_have_no_circles():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_module_of_the_package_has_a_layer():
    """A new top-level module or package must be placed, or the layers would not cover it."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = settings["tool"]["importlinter"]["contracts"][0]["layers"]
    placed = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    package = ROOT / "streams"
    present = {
        f"streams.{path.stem}"
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert present - placed == set()
