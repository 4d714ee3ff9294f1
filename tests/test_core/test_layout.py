"""Packages import downward only: the state package and the query API stand below the
processor, so the processor hands the API what it serves instead of the API reaching up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streams

ROOT = Path(streams.__file__).parent
HIGHER_THAN_STATE = ("processor", "web", "connect", "ingest", "bootstrap", "export", "cli")
FORBIDDEN = {
    "state": HIGHER_THAN_STATE,
    "web": ("processor",),
    "export.py": ("processor",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def package_files(name: str) -> list[Path]:
    path = ROOT / name
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize(("name", "forbidden"), FORBIDDEN.items())
def test_a_lower_package_imports_no_higher_one(name: str, forbidden: tuple[str, ...]) -> None:
    files = package_files(name)
    assert files, f"streams/{name} is gone: update this test"
    prefixes = tuple(f"streams.{higher}" for higher in forbidden)
    upward = {
        f"{path.relative_to(ROOT.parent)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module in prefixes or module.startswith(tuple(f"{p}." for p in prefixes))
    }
    assert not upward
