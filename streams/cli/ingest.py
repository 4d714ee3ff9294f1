"""``streams ingest``: sources that feed ``profile-changes`` from queues and files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.cli.startup import check_kafka, command_settings, kafka_settings
from streams.errors import KafkaUnavailableError, StreamsError

ingest_app = typer.Typer(
    help="Feed profile-changes from AMQP queues and change-log files.", no_args_is_help=True
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


@ingest_app.command("amqp")
def amqp(
    queue: Annotated[str, typer.Option(help="The queue to consume (Proca: cus.<org>.deliver).")],
    url: Annotated[
        str | None,
        typer.Option(help="amqp[s]://user:pass@host/vhost (default: $AMQP_URL, else local)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file whose 'amqp' table sets any option (CLI wins).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="The events' source name.")] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(help="Unacknowledged messages at most (prefetch).")
    ] = None,
    no_declare: Annotated[
        bool, typer.Option("--no-declare", help="Require the queue to exist; never declare it.")
    ] = False,
    exit_when_idle: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without messages.")
    ] = None,
) -> None:
    """Consume Proca action/event messages; ack each only after Kafka has its events."""
    settings = command_settings(config=config)
    from streams.ingest.amqp.config import AmqpSourceConfig
    from streams.ingest.config import load_sections
    from streams.logs import configure_logging

    overrides: dict[str, Any] = {
        "queue": queue,
        "url": url,
        "source": source,
        "max_in_flight": max_in_flight,
        "declare_queue": False if no_declare else None,
        "exit_when_idle_seconds": exit_when_idle,
    }
    try:
        section = load_sections(config).get("amqp", {})
        parsed = AmqpSourceConfig.from_section(section, overrides)
        from streams.ingest.amqp.consumer import (  # needs aio-pika, an extra
            AmqpSource,
            AmqpUnavailableError,
            run_until_signalled,
        )
    except StreamsError as exc:
        raise _fail(str(exc)) from exc
    check_kafka(settings)  # after the options: a usage error is said even with Kafka down
    configure_logging(settings.log_level, log_format=settings.log_format)
    try:
        stats = asyncio.run(run_until_signalled(AmqpSource(parsed, settings)))
    except (AmqpUnavailableError, KafkaUnavailableError) as exc:
        raise _fail(str(exc), code=1) from exc
    except StreamsError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(stats.summary())


@ingest_app.command("changelog")
def changelog(
    path: Annotated[
        Path,
        typer.Argument(
            help="A LISTSERV Maestro subscriber change log.", exists=True, dir_okay=False
        ),
    ],
    del_as: Annotated[
        str, typer.Option(help="unsubscribe, or delete (a dataset DEL deletes the profile).")
    ] = "unsubscribe",
    timezone: Annotated[str, typer.Option(help="The log's time zone (IANA name).")] = "UTC",
    source: Annotated[str, typer.Option(help="The events' source name.")] = "listserv-maestro",
    include_ip: Annotated[
        bool, typer.Option("--include-ip", help="Keep the client IP as maestro_last_ip.")
    ] = False,
    max_malformed_share: Annotated[
        float, typer.Option(help="Exit 3 above this share of malformed lines.")
    ] = 0.01,
    report: Annotated[Path | None, typer.Option(help="Write a JSON report here.")] = None,
) -> None:
    """Ingest a subscriber change log; exits 0 when Kafka confirmed every event."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if del_as not in ("unsubscribe", "delete"):
        raise _fail(f"--del-as must be unsubscribe or delete, not {del_as!r}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(f"unknown time zone {timezone!r}") from exc
    settings = kafka_settings()
    from streams.ingest.changelog import ChangeLogOptions
    from streams.ingest.changelog_runner import run_changelog
    from streams.logs import configure_logging

    configure_logging(settings.log_level, log_format=settings.log_format)
    options = ChangeLogOptions(
        timezone=zone,
        source=source,
        del_as="delete" if del_as == "delete" else "unsubscribe",
        include_ip=include_ip,
    )
    code = run_changelog(
        path, settings, options, max_malformed_share=max_malformed_share, report_path=report
    )
    raise typer.Exit(code=code)
