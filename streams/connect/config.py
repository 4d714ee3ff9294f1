"""Connector configuration: one TOML file per connector, validated before anything connects."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.config_files import read_toml
from streams.connect.errors import SinkConfigError
from streams.connect.sink import Sink
from streams.errors import ConfigError
from streams.httpclient.backoff import RetryConfig
from streams.optional import driver_of, missing_driver
from streams.settings import Settings
from streams.validation import validation_problems

SinkType = Literal["postgres", "rest", "file"]

# Imported lazily: a file connector must not need a driver (an extra) installed.
SINK_CLASSES: dict[str, str] = {
    "postgres": "streams.connect.sinks.postgres:PostgresSink",
    "rest": "streams.connect.sinks.rest:RestSink",
    "file": "streams.connect.sinks.file:FileSink",
}


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
    def __call__(self, options: Mapping[str, Any], *, name: str, settings: Settings) -> Sink: ...


def load_config(path: Path, name: str | None = None) -> ConnectorConfig:
    """Read a connector's TOML file; ``name`` (from the command line) must match when given."""
    try:
        raw = read_toml(path)
    except ConfigError as exc:
        raise SinkConfigError(str(exc)) from exc
    try:
        config = ConnectorConfig.model_validate(raw)
    except ValidationError as exc:
        raise SinkConfigError(f"{path}: {validation_problems(exc)}") from exc
    if name is not None and name != config.name:
        raise SinkConfigError(f"{path} configures connector {config.name!r}, not {name!r}")
    return config


def build_sink(config: ConnectorConfig, settings: Settings) -> Sink:
    module_name, class_name = SINK_CLASSES[config.type].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if (driver := driver_of(exc)) is not None:
            raise missing_driver(driver, f"the {config.type} sink", exc) from exc
        raise SinkConfigError(
            f"the {config.type} sink needs a package that is not installed ({exc.name}): "
            "pip install 'profile-streams'"
        ) from exc
    factory: SinkFactory = getattr(module, class_name)
    return factory(config.sink, name=config.name, settings=settings)
