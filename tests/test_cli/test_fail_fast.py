"""Fail fast and say it: with Kafka unreachable every command that needs it exits non-zero within
seconds with one line naming the address and `streams broker`; invalid settings name the
variable and the type it expects; an unknown STREAMS_* variable is a warning naming the
closest known one. Every command runs as a real subprocess, as a person would run it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.connect.config import SINK_CLASSES

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
# The bound for saying that Kafka is down, including the interpreter's start.
FAIL_FAST_SECONDS = 10.0
# Per-command runs wait 1 s for Kafka (a command asking anything else first would take 30 s);
# one run keeps the default timeout to show the default fits the bound.
SHORT_CONNECT_TIMEOUT = "1"
# Generous: a command that hangs must fail the test, not the suite.
SUBPROCESS_TIMEOUT = 120
LIBRDKAFKA_LINE = re.compile(r"%\d\||rdkafka#|FAIL \[|thrd:")

COMMANDS = {
    "worker": ["worker", "--data-dir", "{tmp}/data", "--web-port", "0"],
    "produce": ["produce", str(SAMPLES / "profile_changes.jsonl")],
    "export": ["export", "--output", "{tmp}/profiles.jsonl"],
    "bootstrap": [
        "bootstrap",
        "--source",
        str(SAMPLES / "customers_snapshot.csv"),
        "--mapping",
        str(SAMPLES / "bootstrap_mapping.json"),
        "--checkpoint-dir",
        "{tmp}/checkpoints",
    ],
    "connect": ["connect", "files", "--config", str(ROOT / "connectors" / "file.example.toml")],
    "serve": ["serve", "--port", "0"],
    "ingest amqp": ["ingest", "amqp", "--queue", "q", "--url", "amqp://guest:guest@{closed}/"],
    "ingest changelog": ["ingest", "changelog", str(SAMPLES / "maestro_changelog.txt")],
    "topics create": ["topics", "create"],
    "topics check": ["topics", "check"],
    "status": ["status"],
    "demo": ["demo", "--once"],  # with KAFKA_BOOTSTRAP_SERVERS set it uses that Kafka
}


@pytest.fixture
def closed_address() -> Iterator[str]:
    """host:port that refuses connections: bound (so nothing else takes it), not listening."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{reserved.getsockname()[1]}"


def _run(
    args: list[str], tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    # Only the variables this test sets: a developer's STREAMS_* must not change the outcome.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMS_", "KAFKA_"))}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", *args],
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        cwd=tmp_path,  # no .env of the repository is read
        stdin=subprocess.DEVNULL,
    )
    return result, time.monotonic() - started


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], address: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert not LIBRDKAFKA_LINE.search(output), output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert address in lines[0], output
    assert "streams broker" in lines[0], output
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_command_says_kafka_is_unreachable_in_one_line_within_seconds(
    command, closed_address, tmp_path
):
    args = [arg.format(tmp=tmp_path, closed=closed_address) for arg in COMMANDS[command]]
    result, seconds = _run(
        args,
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=closed_address,
        STREAMS_KAFKA_CONNECT_TIMEOUT_SECONDS=SHORT_CONNECT_TIMEOUT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert seconds < FAIL_FAST_SECONDS
    line = _assert_one_clear_line(result, closed_address)
    assert "Connection refused" in line


def test_the_default_connect_timeout_keeps_within_the_bound(closed_address, tmp_path):
    result, seconds = _run(
        ["worker", "--data-dir", str(tmp_path / "data")],
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=closed_address,
    )
    assert result.returncode == 1
    assert seconds < FAIL_FAST_SECONDS
    assert "no answer within 5 s" in _assert_one_clear_line(result, closed_address)


def test_invalid_settings_name_each_variable_and_its_type(tmp_path):
    result, _ = _run(
        ["worker"],
        tmp_path,
        STREAMS_PARTITIONS="abc",
        STREAMS_WEB_PORT="99999",
        STREAMS_OUTPUT_FORMAT="xml",
        # Never reached: settings are checked before Kafka is asked.
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
    )
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert output.splitlines() == [
        "error: STREAMS_PARTITIONS: expected an integer, got 'abc'",
        "error: STREAMS_WEB_PORT: expected an integer <= 65535, got '99999'",
        "error: STREAMS_OUTPUT_FORMAT: expected 'avro' or 'json', got 'xml'",
    ]


def test_an_unknown_streams_variable_warns_with_the_closest_known_one(closed_address, tmp_path):
    config = tmp_path / "files.toml"
    config.write_text(
        'name = "files"\ntype = "file"\n[sink]\ndirectory = "${STREAMS_OUT_DIR}"\n',
        encoding="utf-8",
    )
    result, _ = _run(
        ["connect", "files", "--config", str(config)],
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=closed_address,
        STREAMS_KAFKA_CONNECT_TIMEOUT_SECONDS=SHORT_CONNECT_TIMEOUT,
        STREAMS_PARTITONS="4",
        STREAMS_TEST_POSTGRES_DSN="postgresql://tests-only",
        STREAMS_POSTGRES_DSN="postgresql://named-by-an-example-file",
        STREAMS_OUT_DIR=str(tmp_path),  # named by this command's configuration file
    )
    output = result.stdout + result.stderr
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: STREAMS_PARTITONS is not a Profile Streams setting: "
        "did you mean STREAMS_PARTITIONS?"
    ]
    assert result.returncode == 1  # and the command went on, to Kafka


def test_connect_help_names_the_sink_types_and_their_example_files():
    result = CliRunner().invoke(app, ["connect", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    examples = sorted(path.name for path in (ROOT / "connectors").glob("*.example.toml"))
    assert examples
    for example in examples:
        assert f"connectors/{example}" in result.output
    for sink_type in SINK_CLASSES:
        assert f"{sink_type} (" in result.output


def test_every_command_logs_through_the_redacting_handler_from_the_start(capsys, monkeypatch):
    import logging

    from streams.cli.startup import command_settings

    monkeypatch.setenv("STREAMS_LOG_LEVEL", "DEBUG")
    command_settings()
    logging.getLogger("streams.any").info("not shown before the service sets its level")
    logging.getLogger("httpx").warning("GET https://h/x?token=abc&to=anna.person@example.com")
    err = capsys.readouterr().err
    assert "not shown" not in err
    assert "token=***" in err
    assert "abc" not in err
    assert "anna.person@" not in err


def test_global_options_stand_for_their_environment_variables(
    closed_address, monkeypatch: pytest.MonkeyPatch
):
    """``--bootstrap-servers``, ``--log-level`` and ``--log-format``, before any command, win
    over the environment and reach every settings read of the command."""
    from streams.settings import Settings

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # restored after the test
    monkeypatch.setenv("STREAMS_LOG_LEVEL", "INFO")
    monkeypatch.setenv("STREAMS_LOG_FORMAT", "text")
    monkeypatch.setenv("STREAMS_KAFKA_CONNECT_TIMEOUT_SECONDS", SHORT_CONNECT_TIMEOUT)
    result = CliRunner().invoke(
        app,
        [
            *("--bootstrap-servers", closed_address),
            *("--log-level", "DEBUG", "--log-format", "json"),
            *("topics", "check"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert f"Kafka at {closed_address} is unreachable" in result.output
    settings = Settings()
    assert (settings.kafka_bootstrap_servers, settings.log_level) == (closed_address, "DEBUG")
    assert settings.log_format == "json"


def test_a_log_format_other_than_text_or_json_is_a_usage_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STREAMS_LOG_FORMAT", "text")  # restored: the option sets it
    result = CliRunner().invoke(app, ["--log-format", "yaml", "topics", "check"])
    assert result.exit_code == 2
    assert "error: STREAMS_LOG_FORMAT: expected 'text' or 'json', got 'yaml'" in result.output


def test_json_logs_from_the_start_are_redacted_objects(capsys, monkeypatch):
    import json
    import logging

    from streams.cli.startup import command_settings

    monkeypatch.setenv("STREAMS_LOG_FORMAT", "json")
    command_settings()
    logging.getLogger("httpx").warning("GET https://h/x?token=abc&to=anna.person@example.com")
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert (entry["level"], entry["logger"]) == ("WARNING", "httpx")
    assert entry["message"] == "GET https://h/x?token=***&to=a***@example.com"
