"""Drivers are extras: each feature whose driver is absent names the extra that brings it.

A driver is made absent with ``sys.modules[name] = None`` (an import of it then fails as if it
were not installed), and the modules that import it are dropped from ``sys.modules`` so that
they are imported again; monkeypatch puts everything back afterwards.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from streams.bootstrap.postgres import PostgresSource
from streams.cli.main import app
from streams.connect.config import ConnectorConfig, build_sink
from streams.errors import ConfigError
from streams.optional import DISTRIBUTION, DRIVERS, MissingDriverError, requires
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def without(monkeypatch: pytest.MonkeyPatch, driver: str, *importers: str) -> None:
    """``driver`` cannot be imported, and ``importers`` are imported afresh."""
    monkeypatch.setitem(sys.modules, driver, None)
    for name in importers:
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_a_missing_driver_says_which_extra_to_install(monkeypatch):
    without(monkeypatch, "psycopg")
    with pytest.raises(MissingDriverError) as raised, requires("psycopg", "the PostgreSQL sink"):
        import psycopg  # noqa: F401

    message = str(raised.value)
    assert message.startswith("the PostgreSQL sink needs psycopg (")
    assert message.endswith(": pip install 'profile-streams[postgres]'")
    assert isinstance(raised.value, ConfigError)  # the command line prints it as one line
    assert isinstance(raised.value.__cause__, ImportError)


def test_an_installed_driver_is_imported_as_usual():
    with requires("psycopg", "the PostgreSQL sink"):
        import psycopg

    assert psycopg.__name__ == "psycopg"


def test_only_a_known_driver_can_be_required():
    with pytest.raises(ValueError, match="psycopg2"), requires("psycopg2", "a typo"):
        pass


def test_the_extras_in_pyproject_are_the_drivers():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {
        extra: [Requirement(line) for line in lines]
        for extra, lines in project["optional-dependencies"].items()
    }
    required = {Requirement(line).name for line in project["dependencies"]}
    for driver in DRIVERS.values():
        assert driver.package not in required, f"{driver.package} is a hard dependency again"
        assert driver.package in {r.name for r in extras[driver.extra]}, driver
    # [all] is every driver's extra, and make install's [dev] has [all].
    (every,) = extras["all"]
    assert (every.name, every.extras) == (DISTRIBUTION, {d.extra for d in DRIVERS.values()})
    assert any(r.name == DISTRIBUTION and r.extras == {"all"} for r in extras["dev"])


# --- postgres --------------------------------------------------------------------------------

POSTGRES_SINK = (
    "streams.connect.sinks.postgres",
    "streams.connect.sinks.postgres.sink",
    "streams.connect.sinks.postgres.sql",
)


def test_the_postgres_sink_without_psycopg_names_the_postgres_extra(monkeypatch):
    without(monkeypatch, "psycopg", *POSTGRES_SINK)
    config = ConnectorConfig(name="crm", type="postgres", sink={"dsn": "postgresql://h/db"})
    with pytest.raises(MissingDriverError, match=r"pip install 'profile-streams\[postgres\]'"):
        build_sink(config, Settings())
    with pytest.raises(MissingDriverError, match=r"^the PostgreSQL sink needs psycopg"):
        importlib.import_module("streams.connect.sinks.postgres.sql")


def test_the_postgres_source_without_psycopg_names_the_postgres_extra(monkeypatch):
    without(monkeypatch, "psycopg")
    source = PostgresSource("postgresql://h/db", "SELECT 1")  # a CSV job imports the class too
    with (
        pytest.raises(MissingDriverError, match=r"^the PostgreSQL source needs psycopg") as raised,
        source,
    ):
        pass
    assert str(raised.value).endswith("pip install 'profile-streams[postgres]'")


# --- amqp ------------------------------------------------------------------------------------

AMQP_SOURCE = ("streams.ingest.amqp.consumer", "streams.ingest.amqp.topology")


def test_the_amqp_source_without_aio_pika_names_the_amqp_extra(monkeypatch):
    without(monkeypatch, "aio_pika", *AMQP_SOURCE)
    for module in reversed(AMQP_SOURCE):  # topology alone, then the consumer
        with pytest.raises(MissingDriverError) as raised:
            importlib.import_module(module)
        assert str(raised.value).startswith("the AMQP source needs aio-pika (")
        assert str(raised.value).endswith("pip install 'profile-streams[amqp]'")


def test_streams_ingest_amqp_without_aio_pika_exits_with_one_line(monkeypatch):
    without(monkeypatch, "aio_pika", *AMQP_SOURCE)
    result = CliRunner().invoke(app, ["ingest", "amqp", "--queue", "q"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert "error: the AMQP source needs aio-pika" in result.output
    assert "pip install 'profile-streams[amqp]'" in result.output


# --- rest: tests/test_cli/test_without_drivers.py (httpx blocked from the interpreter's start)

# --- faust -----------------------------------------------------------------------------------


def test_the_faust_contender_without_faust_names_the_faust_extra(monkeypatch):
    without(monkeypatch, "faust", "benchmarks.faust_agents")
    with pytest.raises(MissingDriverError) as raised:
        importlib.import_module("benchmarks.faust_agents")
    assert str(raised.value).startswith("the Faust contender needs faust-streaming (")
    assert str(raised.value).endswith("pip install 'profile-streams[faust]'")


FAUST_ENGINE = (
    "streams.faust",
    "streams.faust.batches",
    "streams.faust.install",
    "streams.faust.views",
    "streams.faust.worker",
)


def test_the_faust_engine_without_faust_names_the_faust_extra(monkeypatch):
    without(monkeypatch, "faust", *FAUST_ENGINE)
    with pytest.raises(MissingDriverError) as raised:
        importlib.import_module("streams.faust")
    assert str(raised.value).startswith("the Faust engine needs faust-streaming (")
    assert str(raised.value).endswith("pip install 'profile-streams[faust]'")


def test_streams_worker_engine_faust_without_faust_exits_with_one_line(monkeypatch):
    without(monkeypatch, "faust", *FAUST_ENGINE)
    result = CliRunner().invoke(app, ["worker", "--engine", "faust"])
    assert result.exit_code == 1, result.output  # as the worker's other ConfigErrors
    assert isinstance(result.exception, SystemExit)  # no traceback, and Kafka not asked
    assert "error: the Faust engine needs faust-streaming" in result.output
    assert "pip install 'profile-streams[faust]'" in result.output
