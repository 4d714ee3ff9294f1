"""The `streams` command line: help everywhere, profile get, and the demo `make run` runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.testing import produce_events, wait_until

COMMANDS = [
    [],
    ["broker"],
    ["topics"],
    ["topics", "create"],
    ["topics", "check"],
    ["topics", "tail"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "replay"],
    ["worker"],
    ["profile"],
    ["profile", "get"],
    ["produce"],
    ["demo"],
    ["connect"],
    ["bootstrap"],
    ["export"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "streams")
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_profile_get_prints_what_the_query_api_answers(streams_settings, start_worker, tmp_path):
    settings = streams_settings(web_port=0, api_tokens="cli-token")
    service = start_worker(settings)
    produce_events(
        settings,
        [
            {
                "customer_id": "c-9",
                "source": "crm",
                "update_timestamp": 1570001049,
                "properties": {"first_name": "Marian"},
            }
        ],
    )
    wait_until(lambda: service.worker is not None and service.worker.totals.applied == 1)
    runner = CliRunner(env={"STREAMS_API_TOKENS": "cli-token"})  # sent as a bearer token
    plain = runner.invoke(app, ["profile", "get", "c-9", "--url", service.url])
    assert plain.exit_code == 0, plain.output
    assert orjson.loads(plain.output) == {"properties": {"first_name": "Marian"}}
    timed = runner.invoke(
        app, ["profile", "get", "c-9", "--include-timestamps", "--url", service.url]
    )
    assert orjson.loads(timed.output) == {
        "properties": {"first_name": {"value": "Marian", "last_update": 1570001049}}
    }
    missing = runner.invoke(app, ["profile", "get", "nobody", "--url", service.url])
    assert missing.exit_code == 1
    assert "404" in missing.output
    refused = CliRunner(env={"STREAMS_API_TOKENS": "other"}).invoke(
        app, ["profile", "get", "c-9", "--url", service.url]
    )
    assert refused.exit_code == 1
    assert "401" in refused.output
    assert "STREAMS_API_TOKENS" in refused.output


def test_demo_bootstraps_the_snapshot_then_keeps_the_fresher_live_values(kafka_bootstrap, tmp_path):
    """`make run`'s story: the CRM snapshot (older) bootstrapped, then the live events; the
    profile keeps the snapshot's values where nothing fresher came, the live ones elsewhere."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAMS_WEB_PORT": "0",
        "STREAMS_PARTITIONS": "4",
        "STREAMS_INPUT_TOPIC": "demo-changes",
        "STREAMS_UPSERTS_TOPIC": "demo-upserts",
        "STREAMS_STALE_TOPIC": "demo-stale",
        "STREAMS_DLQ_TOPIC": "demo-dlq",
        "STREAMS_CHANGELOG_TOPIC": "demo-changelog",
        "COLUMNS": "120",
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "demo", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for reason in ("bad_json", "unknown_field", "future_timestamp", "missing_customer_id"):
        assert reason in out
    assert "curl" in out
    assert (
        "Bootstrapped the CRM snapshot customers_snapshot.csv, older than every live event:\n"
        "  8 rows, 7 produced, 1 rejected (bad_email=1), 1 duplicate id(s)\n"
    ) in out
    # Every snapshot row applied; the live events' counts in their own column.
    assert re.search(r"applied \(upsert emitted\)\s*│\s*7\s*│\s*[1-9]", out), out
    assert re.search(r"rejected to the DLQ\s*│\s*0\s*│\s*[1-9]", out), out
    rows = {cells[0]: cells[1:] for cells in table_rows(out) if len(cells) == 4}
    assert rows["city"][0] == "Praha"  # the web's, 2025-11-22, not the snapshot's
    assert rows["city"][2] == "live, newer than the snapshot's 'Bratislava'"
    assert rows["last_name"] == ["Galik", "2025-11-18 10:30:00", "snapshot"]
    assert rows["age"][0] == "41"
    assert rows["age"][2] == "snapshot"
    assert rows["email"][0] == "m***@example.com"
    assert rows["first_name"] == [
        "Marian",
        "2025-11-22 08:26:42",
        "live, newer (the snapshot's value too)",
    ]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every rich table row in ``text``."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.strip().startswith("│")
    ]


def test_broker_command_serves_kafka_until_interrupted(kafka_libs_dir, tmp_path):
    import signal
    import socket

    from confluent_kafka.admin import AdminClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "broker",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path / "kafka"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        # The banner comes once the broker is ready; log lines may come before it.
        banner = next(line for line in process.stdout if "listening on" in line)
        assert f"127.0.0.1:{port}" in banner
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        wait_until(lambda: _has_broker(admin), timeout=60, every=1.0)
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()


def _has_broker(admin) -> bool:
    try:
        return bool(admin.list_topics(timeout=2).brokers)
    except Exception:
        return False


def test_topics_commands_create_then_check(kafka_bootstrap):
    import uuid

    suffix = uuid.uuid4().hex[:8]
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "STREAMS_PARTITIONS": "2"}
    env.update(
        {
            f"STREAMS_{name}_TOPIC": f"cli-{name.lower()}-{suffix}"
            for name in ("INPUT", "UPSERTS", "STALE", "DLQ", "CHANGELOG")
        }
    )
    runner = CliRunner()
    first = runner.invoke(app, ["topics", "create"], env=env)
    assert first.exit_code == 0, first.output
    assert first.output.count("created") == 5
    again = runner.invoke(app, ["topics", "create"], env=env)
    assert again.output.count("exists") == 5
    assert runner.invoke(app, ["topics", "check"], env=env).exit_code == 0
    mismatch = runner.invoke(app, ["topics", "check"], env={**env, "STREAMS_PARTITIONS": "3"})
    assert mismatch.exit_code == 1
    assert f"cli-input-{suffix}" in mismatch.output


def test_demo_streams_live_updates_and_stops_cleanly_on_ctrl_c(kafka_libs_dir, tmp_path):
    import signal
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        web_port = probe.getsockname()[1]
    # No KAFKA_BOOTSTRAP_SERVERS: the demo starts its own embedded broker, as `make run` does.
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(STREAMS_WEB_PORT=str(web_port), COLUMNS="120")
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli.main", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("live update"):
                break
        assert any("applied (upsert emitted)" in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGINT)
        assert process.wait(90) == 0
        rest = process.stdout.read()
        assert "Stopped cleanly." in rest
    finally:
        if process.poll() is None:
            process.kill()


def test_version_prints_the_package_version():
    from streams import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"streams {__version__}"
