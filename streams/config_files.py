"""Configuration files (TOML) of connectors and services, with ``${VAR}`` references expanded.

Secrets stay out of the files: a file names the environment variable that holds one.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.errors import ConfigError

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` in strings (secrets stay out of config files); missing is an error
    that names every missing variable at once (names only), so one restart fixes them all."""
    env = os.environ if environ is None else environ
    missing = sorted(_referenced(value) - env.keys())
    if missing:
        raise ConfigError(f"environment variables not set: {', '.join(missing)}")
    return _substitute(value, env)


def _referenced(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_ENV_REFERENCE.findall(value))
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*(_referenced(item) for item in value))
    return set()


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(lambda match: env[match.group(1)], value)
    if isinstance(value, dict):
        return {key: _substitute(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, env) for item in value]
    return value


def env_references(path: Path) -> set[str]:
    """The ``${VAR}`` names a configuration file refers to (none if it cannot be read)."""
    try:
        return set(_ENV_REFERENCE.findall(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return set()


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file with ``${VAR}`` references expanded; ConfigError says what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        expanded: dict[str, Any] = expand_env(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return expanded
