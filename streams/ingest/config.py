"""The ingestion service's TOML file: one section per feature, ``${ENV}`` expanded.

Each feature validates its own section with its own pydantic model; this module only reads the
file. Example: ``ingest/serve.example.toml``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.connect.config import expand_env
from streams.connect.errors import SinkConfigError
from streams.errors import ConfigError


def load_sections(path: Path | None) -> Mapping[str, Any]:
    """The file's top-level tables with environment references expanded; {} without a file."""
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        expanded: dict[str, Any] = expand_env(raw)
    except SinkConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return expanded
