"""Connector configuration: one TOML file per connector, validated before anything connects."""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.connect.errors import SinkConfigError
from streams.connect.sink import BatchingSink
from streams.httpclient.backoff import RetryConfig
from streams.settings import Settings
from streams.validation import validation_problems

SinkType = Literal["postgres", "rest", "file"]

# Imported lazily: a file connector must not need a PostgreSQL driver installed.
SINK_CLASSES: dict[str, str] = {
    "postgres": "streams.connect.sinks.postgres:PostgresSink",
    "rest": "streams.connect.sinks.rest:RestSink",
    "file": "streams.connect.sinks.file:FileSink",
}

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class BatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_records: int = Field(default=5000, ge=1)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_wait_ms: int = Field(default=1000, ge=0)


class ConnectorConfig(BaseModel):
    """``name`` names the consumer group (``profile-streams-connect-<name>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$", max_length=100)
    type: SinkType
    dlq_topic: str | None = None
    batch: BatchConfig = BatchConfig()
    retry: RetryConfig = RetryConfig()
    # repr=False: the expanded options may hold secrets (a DSN with its password).
    sink: dict[str, Any] = Field(default_factory=dict, repr=False)

    def group_id(self) -> str:
        return f"profile-streams-connect-{self.name}"

    def dead_letter_topic(self, settings: Settings) -> str:
        return self.dlq_topic or f"{settings.upserts_topic}-{self.name}-dlq"


class SinkFactory(Protocol):
    def __call__(
        self, options: Mapping[str, Any], *, name: str, settings: Settings
    ) -> BatchingSink: ...


def expand_env(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` in strings (secrets stay out of config files); missing is an error."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise SinkConfigError(f"environment variable {name} is not set")
            return env[name]

        return _ENV_REFERENCE.sub(lookup, value)
    if isinstance(value, dict):
        return {key: expand_env(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, env) for item in value]
    return value


def env_references(path: Path) -> set[str]:
    """The ``${VAR}`` names a configuration file refers to (none if it cannot be read)."""
    try:
        return set(_ENV_REFERENCE.findall(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return set()


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file with ``${VAR}`` references expanded; SinkConfigError says what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SinkConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SinkConfigError(f"{path} is not valid TOML: {exc}") from exc
    expanded: dict[str, Any] = expand_env(raw)
    return expanded


def load_config(path: Path, name: str | None = None) -> ConnectorConfig:
    """Read a connector's TOML file; ``name`` (from the command line) must match when given."""
    raw = read_toml(path)
    try:
        config = ConnectorConfig.model_validate(raw)
    except ValidationError as exc:
        raise SinkConfigError(f"{path}: {validation_problems(exc)}") from exc
    if name is not None and name != config.name:
        raise SinkConfigError(f"{path} configures connector {config.name!r}, not {name!r}")
    return config


def build_sink(config: ConnectorConfig, settings: Settings) -> BatchingSink:
    module_name, class_name = SINK_CLASSES[config.type].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SinkConfigError(
            f"the {config.type} sink needs a package that is not installed ({exc.name}): "
            "pip install 'profile-streams'"
        ) from exc
    factory: SinkFactory = getattr(module, class_name)
    return factory(config.sink, name=config.name, settings=settings)
