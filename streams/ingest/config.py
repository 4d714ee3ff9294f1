"""The ingestion service's TOML file: one section per feature, ``${ENV}`` expanded.

Each feature validates its own section with its own pydantic model; this module only reads the
file. Example: ``ingest/serve.example.toml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.config_files import read_toml


def load_sections(path: Path | None) -> Mapping[str, Any]:
    """The file's top-level tables with environment references expanded; {} without a file."""
    if path is None:
        return {}
    return read_toml(path)
