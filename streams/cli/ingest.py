"""``streams ingest``: sources that feed ``profile-changes`` from queues and files."""

from __future__ import annotations

import typer

ingest_app = typer.Typer(
    help="Feed profile-changes from AMQP queues and change-log files.", no_args_is_help=True
)
