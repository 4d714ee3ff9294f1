"""LISTSERV Maestro change logs: the parser (with hypothesis), events, and the run to Kafka."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from streams.ingest.changelog import (
    ChangeLogEntry,
    ChangeLogOptions,
    MalformedLineError,
    parse_line,
    parse_lines,
    to_event,
)
from streams.ingest.changelog_runner import (
    EXIT_DELIVERY,
    EXIT_OK,
    EXIT_TOO_MANY_MALFORMED,
    run_changelog,
)
from streams.settings import Settings
from streams.testing import read_topic

SAMPLE = Path(__file__).parents[2] / "samples" / "maestro_changelog.txt"
UTC_OPTIONS = ChangeLogOptions(timezone=UTC)


def test_reference_lines_parse() -> None:
    entry = parse_line("2006-08-03 08:56:48 DEL L 1 24 BUDTHETEACHER@GMAIL.COM 216.17.254.77", 7)
    assert entry == ChangeLogEntry(
        7, datetime(2006, 8, 3, 8, 56, 48), "DEL", "L", 1, 24, "BUDTHETEACHER@GMAIL.COM",
        "216.17.254.77",
    )  # fmt: skip
    dataset = parse_line("2006-08-03 02:18:26 DEL D 13 JJAFFRAY@DIRECWAY.COM", 2)
    assert (dataset.kind, dataset.dataset_id, dataset.list_id, dataset.ip) == ("D", 13, None, None)


def test_sample_file_reports_malformed_lines_by_number() -> None:
    items = list(parse_lines(SAMPLE.read_bytes().splitlines(keepends=True)))
    bad = [(i.line_no, i.reason) for i in items if isinstance(i, MalformedLineError)]
    assert [n for n, _ in bad] == [12, 13]  # line 11 is blank: skipped, not malformed
    assert "unknown target" in bad[0][1]
    assert "@" not in "".join(reason for _, reason in bad)  # reasons never quote the line
    assert sum(isinstance(i, ChangeLogEntry) for i in items) == 10


def test_del_list_is_an_unsubscribe_at_the_lines_time() -> None:
    entry = parse_line("2006-08-03 02:18:26 DEL L 13 22 JJAFFRAY@DIRECWAY.COM", 1)
    event = to_event(entry, UTC_OPTIONS)
    assert event["customer_id"] == "jjaffray@direcway.com"
    assert event["source"] == "listserv-maestro"
    assert event["update_timestamp"] == datetime(2006, 8, 3, 2, 18, 26, tzinfo=UTC).timestamp()
    assert event["properties"] == {"email": "jjaffray@direcway.com", "subscribed_list_22": False}
    assert event["event_id"] == to_event(entry, UTC_OPTIONS)["event_id"]  # deterministic


def test_timezone_is_configurable() -> None:
    entry = parse_line("2006-08-03 02:18:26 ADD D 13 A@B.CO", 1)
    vienna = to_event(entry, ChangeLogOptions(timezone=ZoneInfo("Europe/Vienna")))
    assert vienna["update_timestamp"] == to_event(entry, UTC_OPTIONS)["update_timestamp"] - 7200
    assert vienna["properties"]["member_dataset_13"] is True


def test_del_as_delete_deletes_on_dataset_lines_and_unsubscribes_on_list_lines() -> None:
    options = ChangeLogOptions(timezone=UTC, del_as="delete")
    dataset = to_event(parse_line("2006-08-03 02:18:26 DEL D 13 X@Y.COM", 1), options)
    assert dataset["op"] == "delete"
    assert "properties" not in dataset
    listed = to_event(parse_line("2006-08-03 02:18:26 DEL L 13 22 X@Y.COM", 1), options)
    assert listed["properties"]["subscribed_list_22"] is False


def test_ip_is_kept_only_when_asked() -> None:
    entry = parse_line("2006-08-03 09:23:12 DEL L 1 14 IZZYD96@MSN.COM 71.49.153.209", 1)
    assert "maestro_last_ip" not in to_event(entry, UTC_OPTIONS)["properties"]
    kept = to_event(entry, ChangeLogOptions(timezone=UTC, include_ip=True))
    assert kept["properties"]["maestro_last_ip"] == "71.49.153.209"


@pytest.mark.parametrize(
    "line",
    [
        "2006-08-03 02:18:26 DEL L 13 JJAFFRAY@DIRECWAY.COM",  # list line with one id
        "2006-08-03 02:18:26 DEL D 13 22 JJAFFRAY@DIRECWAY.COM",  # dataset line with two ids
        "2006-08-03 02:18:26 MOV L 13 22 A@B.COM",
        "2006-02-30 02:18:26 DEL L 13 22 A@B.COM",
        "2006-08-03 02:18:26 DEL L 1x 22 A@B.COM",
        "2006-08-03 02:18:26 DEL L 13 22 not-an-email",
        "2006-08-03 02:18:26 DEL L 13 22 A@B.COM 999.1.1.1",
        "2006-08-03 02:18:26 DEL L 13 22 A@B.COM 1.2.3.4 extra",
        "garbage",
    ],
)
def test_malformed_lines_are_rejected_with_their_number(line: str) -> None:
    with pytest.raises(MalformedLineError) as caught:
        parse_line(line, 42)
    assert caught.value.line_no == 42


emails = st.from_regex(
    r"[A-Za-z0-9._%+-]{1,12}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?\.[A-Za-z]{2,4}",
    fullmatch=True,
)
ips = st.none() | st.ip_addresses().map(str)
entries = st.builds(
    lambda at, action, kind, ds, ls, email, ip, n: ChangeLogEntry(
        n, at.replace(microsecond=0), action, kind, ds, ls if kind == "L" else None, email, ip
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["ADD", "DEL"]),
    st.sampled_from(["L", "D"]),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    emails,
    ips,
    st.integers(1, 10**6),
)


@given(entries)
def test_format_then_parse_is_the_identity(entry: ChangeLogEntry) -> None:
    assert parse_line(entry.format(), entry.line_no) == entry


@given(st.lists(st.binary(max_size=80) | entries.map(lambda e: e.format().encode()), max_size=20))
def test_parser_never_raises_and_numbers_every_reported_line(lines: list[bytes]) -> None:
    items = list(parse_lines(lines))
    numbers = [item.line_no for item in items]
    assert numbers == sorted(set(numbers))
    assert all(1 <= n <= len(lines) for n in numbers)
    assert len(items) == sum(1 for line in lines if line.decode("utf-8", "replace").strip())


def test_run_produces_confirmed_events_and_a_summary(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    console = Console(record=True, width=200)
    report = tmp_path / "report.json"
    code = run_changelog(
        SAMPLE, settings, UTC_OPTIONS, max_malformed_share=0.25, report_path=report,
        console=console, progress=False,
    )  # fmt: skip
    assert code == EXIT_OK
    records = read_topic(settings, settings.input_topic)
    events = [orjson.loads(r.value or b"") for r in records]
    assert len(events) == 10
    assert all(r.key == orjson.loads(r.value or b"")["customer_id"].encode() for r in records)
    text = console.export_text()
    assert "10 events produced, 10 confirmed by Kafka, 2 malformed" in text
    assert "malformed line 12" in text
    assert "malformed line 13" in text
    body = orjson.loads(report.read_bytes())
    assert [m["line"] for m in body["malformed"]] == [12, 13]
    assert body["by_change"] == {"ADD L": 1, "DEL D": 2, "DEL L": 7}


def test_too_many_malformed_lines_exit_3_after_producing_the_good_ones(
    streams_settings,
) -> None:
    settings = streams_settings()
    code = run_changelog(
        SAMPLE, settings, UTC_OPTIONS, max_malformed_share=0.1,
        console=Console(record=True), progress=False,
    )  # fmt: skip
    assert code == EXIT_TOO_MANY_MALFORMED
    assert len(read_topic(settings, settings.input_topic)) == 10


def test_unreachable_kafka_is_a_failure_not_a_success(tmp_path) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", delivery_timeout_ms=2000)
    console = Console(record=True, width=200)
    code = run_changelog(SAMPLE, settings, UTC_OPTIONS, max_malformed_share=1.0, console=console,
                         progress=False)  # fmt: skip
    assert code == EXIT_DELIVERY
    assert "0 confirmed by Kafka" in console.export_text()


def test_cli(streams_settings, tmp_path) -> None:
    settings = streams_settings()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STREAMS_INPUT_TOPIC": settings.input_topic,
        "STREAMS_UPSERTS_TOPIC": settings.upserts_topic,
        "STREAMS_STALE_TOPIC": settings.stale_topic,
        "STREAMS_DLQ_TOPIC": settings.dlq_topic,
        "STREAMS_CHANGELOG_TOPIC": settings.changelog_topic,
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "streams.cli.main", "ingest", "changelog", str(SAMPLE)]
    result = subprocess.run(
        [*command, "--del-as", "delete", "--timezone", "Europe/Vienna",
         "--max-malformed-share", "0.2"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(r.value or b"") for r in read_topic(settings, settings.input_topic)]
    assert sum(e.get("op") == "delete" for e in events) == 2
    bad = subprocess.run([*command, "--del-as", "drop"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "nope.txt")], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
