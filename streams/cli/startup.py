"""What a command does before its work: read and check the settings, and ask Kafka once, so
that a typo or a broker that is down is said in one line within seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from streams.errors import KafkaUnavailableError, SettingsError, StreamsError
from streams.settings import Settings

EXIT_FAILURE = 1
EXIT_USAGE = 2


def apply_global_options(
    *, bootstrap_servers: str | None, log_level: str | None, log_format: str | None
) -> None:
    """``--bootstrap-servers``, ``--log-level`` and ``--log-format`` set the environment
    variables they stand for, so every settings read of the command (and of the processes it
    starts) sees them; the settings check them like any variable."""
    import os

    for variable, value in (
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers),
        ("STREAMS_LOG_LEVEL", log_level),
        ("STREAMS_LOG_FORMAT", log_format),
    ):
        if value is not None:
            os.environ[variable] = value


def command_settings(*, config: Path | None = None, **overrides: Any) -> Settings:
    """The validated settings, or exit 2 with one line per invalid variable; first a warning
    for every ``STREAMS_*`` variable nothing reads (``${NAME}``s of ``config`` are read)."""
    from streams.config_check import load_settings, unknown_variable_warnings

    also_known: set[str] = set()
    if config is not None:
        from streams.config_files import env_references

        also_known = env_references(config)
    for warning in unknown_variable_warnings(also_known=also_known):
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        raise fail(exc) from exc
    quiet_redacted_logging(settings)
    return settings


def quiet_redacted_logging(settings: Settings) -> None:
    """Warnings and errors through the redacting handler from the start: a command's own
    service (worker, serve, connect) configures its level again when it starts."""
    import logging

    from streams.logs import configure_logging

    wanted = logging.getLevelName(settings.log_level.upper())
    severity = wanted if isinstance(wanted, int) else logging.INFO
    configure_logging(
        logging.getLevelName(max(severity, logging.WARNING)), log_format=settings.log_format
    )


def check_kafka(settings: Settings) -> None:
    """Exit 1 with one line unless Kafka answers within ``kafka_connect_timeout_seconds``
    (exit 2 if librdkafka refuses the connection settings themselves)."""
    from streams.kafka.reachability import require_kafka

    try:
        require_kafka(settings)
    except (KafkaUnavailableError, SettingsError) as exc:
        raise fail(exc) from exc


def kafka_settings(*, config: Path | None = None, **overrides: Any) -> Settings:
    """``command_settings``, then ``check_kafka``. Call it before a command's imports: no time
    is lost importing what a command that cannot run will not use."""
    settings = command_settings(config=config, **overrides)
    check_kafka(settings)
    return settings


def fail(exc: StreamsError, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print ``error: ...`` (one line per invalid setting) and exit: 2 for settings, else
    ``code``."""
    lines = exc.problems if isinstance(exc, SettingsError) else [str(exc)]
    for line in lines:
        typer.secho(f"error: {line}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=EXIT_USAGE if isinstance(exc, SettingsError) else code)
