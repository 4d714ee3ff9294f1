"""The ``streams`` command line."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from streams.cli.dlq import dlq_app
from streams.cli.ingest import ingest_app
from streams.cli.startup import (
    apply_global_options,
    check_kafka,
    command_settings,
    fail,
    kafka_settings,
)
from streams.cli.status import status_command
from streams.cli.tail import tail
from streams.errors import ConfigError, StreamsError
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.supervisor.members import Member

app = typer.Typer(
    name="streams",
    help="Profile Streams: per-property last-writer-wins customer profiles over Kafka.",
    no_args_is_help=True,
    add_completion=False,
)
topics_app = typer.Typer(help="Provision and check the contract's topics.", no_args_is_help=True)
profile_app = typer.Typer(help="Query customer profiles on a worker.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(profile_app, name="profile")
app.add_typer(ingest_app, name="ingest")
app.add_typer(dlq_app, name="dlq")
topics_app.command("tail")(tail)
app.command("status")(status_command)


Processes = Annotated[
    int,
    typer.Option(
        min=1,
        help="Members of the group to run here, one process each; member I gets its own "
        "data dir (DATA_DIR/member-I) and ports (PORT+I). 1: this process alone.",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from streams import __version__

        typer.echo(f"streams {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka's HOST:PORT list (instead of $KAFKA_BOOTSTRAP_SERVERS)."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING or ERROR (instead of $STREAMS_LOG_LEVEL)."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            help="text (key=value) or json: one object a line (instead of $STREAMS_LOG_FORMAT)."
        ),
    ] = None,
) -> None:
    """Profile Streams: per-property last-writer-wins customer profiles over Kafka."""
    apply_global_options(
        bootstrap_servers=bootstrap_servers, log_level=log_level, log_format=log_format
    )


@app.command()
def broker(
    listen: Annotated[
        str, typer.Option(help="HOST:PORT of the Kafka listener.")
    ] = "127.0.0.1:9092",
    data_dir: Annotated[
        Path | None, typer.Option(help="Log directory (default: a fresh temporary one).")
    ] = None,
) -> None:
    """Run the embedded single-node Apache Kafka (KRaft) until interrupted."""
    from streams.broker.embedded import run_foreground

    try:
        code = run_foreground(listen, data_dir)
    except StreamsError as exc:
        raise fail(exc) from exc
    raise typer.Exit(code=code)


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic of the contract (idempotent) and check partition counts."""
    settings = kafka_settings()
    from streams.kafka.topics import create_topics

    try:
        statuses = create_topics(settings)
    except StreamsError as exc:
        raise fail(exc) from exc
    for status in statuses:
        verb = "created" if status.created else "exists "
        typer.echo(f"{verb} {status.name} partitions={status.partitions}")


@topics_app.command("check")
def topics_check() -> None:
    """Exit non-zero, naming the topic, when a topic is missing or mis-partitioned."""
    settings = kafka_settings()
    from streams.kafka.topics import verify_topics

    try:
        verify_topics(settings)
    except StreamsError as exc:
        raise fail(exc) from exc
    typer.echo("topics ok")


class Engine(StrEnum):
    DEFAULT = "default"
    FAUST = "faust"


def _engine_runner(engine: Engine) -> Callable[[Settings], int]:
    """The engine's ``run(settings)``; a missing driver (faust) raises here, before Kafka."""
    if engine is Engine.FAUST:
        from streams.faust.worker import run_faust_worker

        return run_faust_worker
    from streams.processor.runner import run_worker

    return run_worker


@app.command()
def worker(
    data_dir: Annotated[Path | None, typer.Option(help="Local state directory.")] = None,
    web_port: Annotated[int | None, typer.Option(help="Port of the query/metrics API.")] = None,
    web_host: Annotated[str | None, typer.Option(help="Interface of the query API.")] = None,
    engine: Annotated[
        Engine, typer.Option(help="default: batched confluent-kafka loop; faust: a Faust app.")
    ] = Engine.DEFAULT,
    processes: Processes = 1,
) -> None:
    """Run one processor worker (or --processes of them); replicas share the input partitions."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if web_port is not None:
        overrides["web_port"] = web_port
    if web_host is not None:
        overrides["web_host"] = web_host
    settings = command_settings(**overrides)
    from streams.web.auth import check_exposure

    try:
        check_exposure(settings)  # a settings mistake is said before Kafka is asked
        if processes > 1 and engine is Engine.FAUST:
            raise ConfigError(
                "--processes supervises workers of the default engine: start Faust workers "
                "one per command (--engine faust, each its own --data-dir and --web-port)"
            )
        run = _engine_runner(engine)
    except StreamsError as exc:
        raise fail(exc) from exc
    check_kafka(settings)
    if processes > 1:
        from streams.supervisor.members import worker_members

        try:
            members = worker_members(settings, processes)
        except StreamsError as exc:
            raise fail(exc) from exc
        raise typer.Exit(code=_supervise(members, settings.partitions, settings.input_topic))
    try:
        code = run(settings)
    except StreamsError as exc:
        raise fail(exc) from exc
    raise typer.Exit(code=code)


@app.command()
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", help="The service's TOML file (sections).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (0: any free).")] = None,
) -> None:
    """Run the HTTP ingestion service (POST /track/batch, /openapi.json) until interrupted."""
    settings = kafka_settings(config=config)
    from streams.ingest.serve import run_serve

    try:
        code = run_serve(settings, config, host=host, port=port)
    except StreamsError as exc:
        raise fail(exc) from exc
    raise typer.Exit(code=code)


@profile_app.command("get")
def profile_get(
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    include_timestamps: Annotated[
        bool, typer.Option("--include-timestamps", help="Show last_update per property.")
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="Worker base URL (default: the configured web port).")
    ] = None,
) -> None:
    """Print a customer's profile as JSON, as GET /customers/{id} answers it."""
    command_settings()  # checked: the worker's address may come from them
    from streams.web.client import fetch_profile

    try:
        body = fetch_profile(customer_id, include_timestamps=include_timestamps, base_url=url)
    except StreamsError as exc:
        raise fail(exc) from exc
    typer.echo(body)


@app.command()
def produce(
    path: Annotated[Path, typer.Argument(help="JSONL file: one change event per line.")],
) -> None:
    """Produce change events from a JSONL file to the input topic, as-is (bad lines too)."""
    settings = kafka_settings()
    from streams.kafka.produce import produce_file

    try:
        count = produce_file(settings, path)
    except StreamsError as exc:
        raise fail(exc) from exc
    typer.echo(f"produced {count} records")


@app.command()
def connect(
    name: Annotated[str, typer.Argument(help="Connector name (its consumer group).")],
    config: Annotated[Path, typer.Option("--config", help="The connector's TOML file.")],
    processes: Processes = 1,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port of /health, /metrics and /status (0: any free; member I of "
            "--processes: PORT+I)."
        ),
    ] = None,
) -> None:
    """Run a connector worker (or --processes of them): deliver profile-upserts to a destination.

    Sink types (the file's type) and their example configuration files:
    postgres (PostgreSQL, connectors/postgres.example.toml),
    rest (REST CRMs, connectors/rest.example.toml),
    file (JSONL or CSV files, connectors/file.example.toml).
    README.md's Connectors section describes every option.
    """
    overrides = {} if port is None else {"connector_web_port": port}
    settings = kafka_settings(config=config, **overrides)
    if processes > 1:
        import os

        from streams.connect.config import load_config
        from streams.supervisor.members import CONNECTOR_WEB_PORT_ENV, connector_members

        # Members count their ports from the one this command chose (--port, the settings).
        environ = {**os.environ, CONNECTOR_WEB_PORT_ENV: str(settings.connector_web_port)}
        try:
            load_config(config, name)  # one error line rather than one per member
            members = connector_members(name, config, processes, environ)
        except StreamsError as exc:
            raise fail(exc) from exc
        raise typer.Exit(code=_supervise(members, settings.partitions, settings.upserts_topic))
    from streams.connect.runner import run_connector

    try:
        code = run_connector(name, config, settings)
    except StreamsError as exc:
        raise fail(exc) from exc
    raise typer.Exit(code=code)


@app.command()
def bootstrap(
    source: Annotated[
        str, typer.Option(help="PATH.csv, PATH.jsonl or a postgresql:// URL (with --query).")
    ],
    mapping: Annotated[Path, typer.Option(help="Mapping file (ids, properties, timestamps).")],
    query: Annotated[str | None, typer.Option(help="SELECT for a database source.")] = None,
    job_id: Annotated[
        str | None, typer.Option(help="Resume the job with this id (default: a new job).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Delta mode: 24h, 7d or an ISO-8601 time.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Where to write the JSON report.")] = None,
    max_reject_share: Annotated[
        float, typer.Option(help="Exit non-zero above this share of rejected rows.")
    ] = 0.01,
    snapshot_time: Annotated[
        str | None, typer.Option(help="When the snapshot was read (default: job start).")
    ] = None,
    max_rate: Annotated[float | None, typer.Option(help="Rows per second at most.")] = None,
    checkpoint_dir: Annotated[
        Path, typer.Option(help="Where resumable jobs keep their checkpoints.")
    ] = Path(".cache/bootstrap"),
) -> None:
    """Backfill a snapshot through profile-changes without overwriting fresher data."""
    settings = kafka_settings()
    from streams.bootstrap import run_bootstrap

    code = run_bootstrap(
        source,
        mapping,
        query=query,
        job_id=job_id,
        since=since,
        report=report,
        max_reject_share=max_reject_share,
        snapshot_time=snapshot_time,
        max_rate=max_rate,
        checkpoint_dir=checkpoint_dir,
        settings=settings,
    )
    raise typer.Exit(code=code)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    include_timestamps: Annotated[
        bool, typer.Option("--include-timestamps", help="Add last_update (seconds).")
    ] = False,
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Write every current profile, exactly the processor's state (from the changelog)."""
    if fmt not in ("csv", "jsonl"):
        raise fail(StreamsError(f"--format must be csv or jsonl, not {fmt!r}"))
    settings = kafka_settings()
    from rich.console import Console

    from streams.export import export_profiles

    console = Console(stderr=True)
    try:
        summary = export_profiles(
            settings,
            "csv" if fmt == "csv" else "jsonl",
            include_timestamps=include_timestamps,
            output=output,
            console=console,
        )
    except StreamsError as exc:
        raise fail(exc) from exc
    rate = summary.records_read / summary.seconds if summary.seconds else 0.0
    console.print(
        f"exported {summary.profiles:,} profiles from {summary.records_read:,} changelog records "
        f"in {summary.seconds:.1f} s ({rate:,.0f} records/s)" + (f" to {output}" if output else "")
    )


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the sample report (no live trickle).")
    ] = False,
) -> None:
    """What `make run` runs: embedded Kafka, topics, a worker, sample data and counts."""
    command_settings()
    from streams.demo import run_demo

    try:
        code = run_demo(once=once)
    except StreamsError as exc:
        raise fail(exc) from exc
    raise typer.Exit(code=code)


def _supervise(members: list[Member], partitions: int, topic: str) -> int:
    """Run ``members`` as one group until a signal or one member's end: the exit code."""
    from streams.supervisor.members import idle_members_warning
    from streams.supervisor.supervise import Supervisor

    if (warning := idle_members_warning(len(members), partitions, topic)) is not None:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    return Supervisor(members).run()


def main() -> None:
    app(prog_name="streams")


if __name__ == "__main__":
    main()
