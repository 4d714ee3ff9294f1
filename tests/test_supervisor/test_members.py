"""What each member of ``--processes N`` gets: its command, data directory and ports."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.errors import SettingsError
from streams.logs import configure_logging
from streams.settings import Settings
from streams.supervisor.members import (
    WORKER_READY,
    Member,
    connector_members,
    idle_members_warning,
    member_port,
    member_url,
    worker_members,
)


def test_each_worker_gets_its_own_data_dir_and_the_next_port(tmp_path):
    settings = Settings(data_dir=tmp_path / "state", web_port=7100, web_host="0.0.0.0")
    members = worker_members(settings, 3)
    assert [m.index for m in members] == [0, 1, 2]
    assert [m.data_dir for m in members] == [tmp_path / "state" / f"member-{i}" for i in range(3)]
    assert [m.env["STREAMS_DATA_DIR"] for m in members] == [str(m.data_dir) for m in members]
    assert [m.env["STREAMS_WEB_PORT"] for m in members] == ["7100", "7101", "7102"]
    assert {m.env["STREAMS_WEB_HOST"] for m in members} == {"0.0.0.0"}
    assert all("STREAMS_ADVERTISED_URL" not in m.env for m in members)
    argv = members[0].argv
    assert argv[-1] == "worker", "a member runs one worker: no --processes, so no recursion"
    assert all(m.argv == argv for m in members)


def test_port_zero_stays_zero_for_every_member():
    assert [m.env["STREAMS_WEB_PORT"] for m in worker_members(Settings(web_port=0), 3)] == [
        "0",
        "0",
        "0",
    ]
    assert member_port(0, 5) == 0
    assert member_port(6066, 5) == 6071


def test_an_advertised_url_moves_its_port_with_the_member():
    settings = Settings(advertised_url="https://node-7.example.net:8443/streams", web_port=6066)
    urls = [m.env["STREAMS_ADVERTISED_URL"] for m in worker_members(settings, 2)]
    assert urls == [
        "https://node-7.example.net:8443/streams",
        "https://node-7.example.net:8444/streams",
    ]
    assert member_url("http://[::1]:6066", 2) == "http://[::1]:6068"


@pytest.mark.parametrize("url", ["http://node-7.example.net", "http://[::1]", "http://node:"])
def test_an_advertised_url_without_a_port_is_refused(url):
    with pytest.raises(SettingsError, match=r"STREAMS_ADVERTISED_URL: .* has no port"):
        worker_members(Settings(advertised_url=url), 2)


def test_ports_past_65535_are_refused():
    with pytest.raises(SettingsError, match="STREAMS_WEB_PORT: 65535 \\+ 1 members passes"):
        worker_members(Settings(web_port=65535), 2)
    assert len(worker_members(Settings(web_port=65535), 1)) == 1
    with pytest.raises(SettingsError, match="STREAMS_ADVERTISED_URL: 65535"):
        worker_members(Settings(advertised_url="http://h:65535"), 2)


def test_each_connector_gets_the_next_connector_port(tmp_path):
    config = tmp_path / "files.toml"
    members = connector_members("files", config, 2, environ={})
    assert [m.env for m in members] == [
        {"STREAMS_CONNECTOR_WEB_PORT": "6067"},
        {"STREAMS_CONNECTOR_WEB_PORT": "6068"},
    ]
    assert members[0].argv[-4:] == ("connect", "files", "--config", str(config))
    assert all(m.data_dir is None for m in members)
    from_env = connector_members("files", config, 2, {"STREAMS_CONNECTOR_WEB_PORT": "7000"})
    assert [m.env["STREAMS_CONNECTOR_WEB_PORT"] for m in from_env] == ["7000", "7001"]
    ephemeral = connector_members("files", config, 2, {"STREAMS_CONNECTOR_WEB_PORT": "0"})
    assert [m.env["STREAMS_CONNECTOR_WEB_PORT"] for m in ephemeral] == ["0", "0"]
    with pytest.raises(SettingsError, match="STREAMS_CONNECTOR_WEB_PORT: expected an integer"):
        connector_members("files", config, 2, {"STREAMS_CONNECTOR_WEB_PORT": "http"})


def test_ready_lines_are_what_the_members_log():
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", stream=stream)
    try:
        logging.getLogger("streams.processor.runner").info(
            "worker started url=%s data_dir=%s queries=%s", "http://h:6071", "d", "open"
        )
        logging.getLogger("streams.connect.worker").info(
            "connector=%s assigned=%s", "files", [0, 1]
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    worker_line, connector_line = stream.getvalue().splitlines()
    assert "queries=open" in worker_line, "not masked as a secret"
    match = WORKER_READY.search(worker_line)
    assert match is not None
    assert match.group("url") == "http://h:6071"
    ready = connector_members("files", Path("f.toml"), 1, {})[0].ready
    assert ready.search(connector_line) is not None
    other = connector_members("file", Path("f.toml"), 1, {})[0].ready
    assert other.search(connector_line) is None, "another connector's line"


@pytest.mark.parametrize(
    "line",
    [
        "2026-12-02 14:30:37,917 level=INFO logger=x connector=files started url=http://h:6068",
        json.dumps({"level": "INFO", "message": "connector=files started url=http://h:6068"}),
    ],
)
def test_a_url_is_read_from_text_and_json_log_lines(line):
    match = connector_members("files", Path("f.toml"), 1, {})[0].ready.search(line)
    assert match is not None
    assert match.group("url") == "http://h:6068"
    worker = WORKER_READY.search(json.dumps({"message": "worker started url=http://h:6066"}))
    assert worker is not None
    assert worker.group("url") == "http://h:6066"


def test_more_members_than_partitions_is_a_warning_not_an_error():
    assert idle_members_warning(4, 4, "profile-changes") is None
    assert idle_members_warning(6, 4, "profile-changes") == (
        "6 processes for the 4 partitions of profile-changes: "
        "2 members will stay idle (spare until another leaves)"
    )


@pytest.mark.parametrize("command", [["worker"], ["connect", "files", "--config", "f.toml"]])
def test_fewer_than_one_process_is_refused(command):
    result = CliRunner().invoke(app, [*command, "--processes", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Invalid value for '--processes': Input should be greater than or equal to 1" in (
        result.output
    )


def test_the_command_hands_its_options_to_the_members_and_warns_of_idle_ones(monkeypatch, tmp_path):
    handed: list[list[Member]] = []

    class Recorded:
        def __init__(self, members: list[Member]) -> None:
            handed.append(members)

        def run(self) -> int:
            return 0

    monkeypatch.setattr("streams.cli.main.check_kafka", lambda settings: None)
    monkeypatch.setattr("streams.supervisor.supervise.Supervisor", Recorded)
    result = CliRunner().invoke(
        app,
        ["worker", "--processes", "3", "--data-dir", str(tmp_path), "--web-port", "7000"],
        env={"STREAMS_PARTITIONS": "2", "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "warning: 3 processes for the 2 partitions of profile-changes: 1 member will" in (
        result.output
    )
    (members,) = handed
    assert [(m.data_dir, m.env["STREAMS_WEB_PORT"]) for m in members] == [
        (tmp_path / "member-0", "7000"),
        (tmp_path / "member-1", "7001"),
        (tmp_path / "member-2", "7002"),
    ]
