"""One event, four ways in: HTTP, AMQP (Proca), a change log and a bootstrap CSV accept or
refuse it alike, and what they accept decodes to the same customer, address and update time.

Each path is driven through its own parsing entry point (a request body, a queue message, a
change-log line, a CSV row through the Python and the Rust converter), then checked as its
service checks it (``EventDecoder.encode``); no broker. Addresses follow the one email rule
(streams.emails); a path that knows no addresses (HTTP: a property is text there) takes every
address the others take.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.bootstrap.files import CsvSource
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, RowLimits
from streams.codecs.events import EventDecoder
from streams.emails import EMAIL_MAX, is_email
from streams.errors import InvalidEventError
from streams.ingest.amqp.proca import ProcaOptions, map_message
from streams.ingest.binding import SourceBinding
from streams.ingest.changelog import ChangeLogOptions, MalformedLineError, parse_line, to_event
from streams.ingest.track import TrackOptions, parse_track_body
from streams.model import ChangeEvent

NOW_MS = 1_800_000_000_000  # 2027-01-15
SKEW_MS = 300_000
MAX_BYTES = 4096
DECODER = EventDecoder(max_event_bytes=MAX_BYTES, max_properties=100, max_clock_skew_ms=SKEW_MS)
SOURCE = "crm"
COLUMNS = ["id", "email", "updated"]
MAPPING = parse_mapping(
    {
        "ids": [{"from_column": "id"}],
        "properties": [{"from_column": "email", "to_property": "email", "type": "email"}],
        "update_timestamp": {"from_column": "updated"},
        "source": SOURCE,
    }
)
CONVERTER_OPTIONS: dict[str, Any] = {
    "job_id": "job",
    "snapshot_ms": NOW_MS,
    "since_ms": None,
    "limits": RowLimits(max_timestamp_ms=NOW_MS + SKEW_MS, max_event_bytes=MAX_BYTES),
}
AT = "2024-03-05T10:15:00Z"
AT_MS = 1_709_633_700_000

Verdict = ChangeEvent | None  # None: refused
Timestamp = int | float | str


def by_http_event(customer_id: str, email: str, at: Timestamp) -> Verdict:
    """A native change event in a tracking request."""
    event = {
        "customer_id": customer_id,
        "source": SOURCE,
        "update_timestamp": at,
        "properties": {"email": email},
    }
    return _track(orjson.dumps(event))


def by_http_command(customer_id: str, email: str, at: Timestamp) -> Verdict:
    """A Bloomreach ``customers`` command in a tracking request."""
    data = {
        "customer_ids": {"registered": customer_id},
        "update_timestamp": at,
        "properties": {"email": email},
    }
    return _track(orjson.dumps({"commands": [{"name": "customers", "data": data}]}))


def _track(body: bytes) -> Verdict:
    batch = parse_track_body(body, DECODER, TrackOptions(), SourceBinding(SOURCE), NOW_MS)
    if not batch.records:
        return None
    [(key, value)] = batch.records
    return DECODER.decode(key, value, NOW_MS, NOW_MS)


def by_amqp(email: str, at: Timestamp) -> Verdict:
    """A Proca action message: the contact's address is the customer."""
    message = {
        "schema": "proca:action:2",
        "actionId": 7,
        "action": {"actionType": "signature", "createdAt": at},
        "contact": {"email": email},
    }
    try:
        [event] = map_message(orjson.dumps(message), ProcaOptions(source=SOURCE)).events
        return DECODER.encode(event, NOW_MS).event
    except InvalidEventError:
        return None


def by_changelog(email: str, at: datetime) -> Verdict:
    """A LISTSERV Maestro change-log line (its time: the log's local time, here UTC)."""
    line = f"{at:%Y-%m-%d %H:%M:%S} ADD D 13 {email}"
    try:
        entry = parse_line(line, 1)
    except MalformedLineError:
        return None
    options = ChangeLogOptions(timezone=UTC, source=SOURCE)
    try:
        return DECODER.encode(to_event(entry, options), NOW_MS).event
    except InvalidEventError:
        return None


def by_bootstrap(customer_id: str, email: str, at: str) -> Verdict:
    """A CSV row through the Python converter (the reference)."""
    converter = ChunkConverter(MAPPING, COLUMNS, text_source=True, **CONVERTER_OPTIONS)
    return _bootstrapped(converter.convert([[customer_id, email, at]], [2]))


def by_native_bootstrap(customer_id: str, email: str, at: str, folder: Path) -> Verdict:
    """A CSV file of one row through the Rust converter (and the Python one for what it leaves)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows([COLUMNS, [customer_id, email, at]])
    path = folder / "one.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    out = ChunkOutput()
    with CsvSource(path) as source:
        for _, chunk in NativeConverter(MAPPING, source, **CONVERTER_OPTIONS).chunks(10):
            out.absorb(chunk)
    return _bootstrapped(out)


def _bootstrapped(out: ChunkOutput) -> Verdict:
    if not out.payloads:
        assert len(out.rejected) == 1
        return None
    [key], [value] = out.keys, out.payloads
    return DECODER.decode(key, value, NOW_MS, NOW_MS)


def _seen(verdict: Verdict) -> tuple[str, str, int] | None:
    """What must agree: the customer and the address, and the update time. AMQP and change
    logs trim and lower-case the address that names the customer; an id column or a request's
    id is taken as written, and the bootstrap trims addresses but keeps their case."""
    if verdict is None:
        return None
    email = verdict.properties["email"]
    assert isinstance(email, str)
    return verdict.customer_id.strip().lower(), email.lower(), verdict.timestamp


def _by_email(email: str, folder: Path) -> dict[str, Verdict]:
    """The address as customer and as property on every path that reads addresses."""
    verdicts = {
        "amqp": by_amqp(email, AT),
        "bootstrap": by_bootstrap(email, email, AT),
        "native bootstrap": by_native_bootstrap(email, email, AT, folder),
    }
    if email and not any(c.isspace() for c in email):  # a log line's fields are split on space
        verdicts["changelog"] = by_changelog(email, datetime.fromisoformat(AT))
    return verdicts


EMAILS = [
    "ada@example.com",
    "Ada.Lovelace+tag@Sub.Example.CO",
    "  padded@example.com  ",
    "o'neil@b-c.example",
    "a..b@example.com",  # the WHATWG local part allows any dots
    "x@" + "a" * 63 + ".com",
    "x@" + "a" * 64 + ".com",  # a domain label is at most 63 characters
    "a" * (EMAIL_MAX - len("@example.com")) + "@example.com",  # the longest
    "a" * (EMAIL_MAX + 1 - len("@example.com")) + "@example.com",  # one too long
    "ada@localhost",  # no dot in the domain
    "ada@b",
    "ada@example.com.",
    "ada@-example.com",
    "ada@example-.com",
    "ada@exa_mple.com",
    "@example.com",
    "ada@",
    "ada@@example.com",
    "ada example@example.com",
    "josé@example.com",  # unicode: not in the WHATWG language
    "ada@exämple.com",
    "\u212aate@example.com",  # the Kelvin sign lower-cases to an ASCII k
    "ada@example.com\u2028",
    "",
    " ",
    "not-an-address",
]


@pytest.mark.parametrize("email", EMAILS)
def test_an_address_is_taken_or_refused_alike_on_every_path(email: str, tmp_path: Path) -> None:
    verdicts = _by_email(email, tmp_path)
    expected = is_email(email.strip())
    assert {path: v is not None for path, v in verdicts.items()} == dict.fromkeys(
        verdicts, expected
    )
    if expected:
        seen = {_seen(v) for v in verdicts.values()}
        assert seen == {(email.strip().lower(), email.strip().lower(), AT_MS)}
        assert by_http_event(email, email, AT) is not None
        assert by_http_command(email, email, AT) is not None


_ADDRESS_CHARS = st.sampled_from("aZ09.-_+'@ é\u212a")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    local=st.text(_ADDRESS_CHARS, max_size=6),
    domain=st.lists(st.text(_ADDRESS_CHARS, max_size=5), min_size=1, max_size=3).map(".".join),
)
@example(local="a", domain="b.c")
def test_addresses_the_rule_takes_are_taken_by_every_path(local: str, domain: str) -> None:
    email = f"{local}@{domain}"
    verdicts = {"amqp": by_amqp(email, AT), "bootstrap": by_bootstrap(email, email, AT)}
    if email.strip() and not any(c.isspace() for c in email):
        verdicts["changelog"] = by_changelog(email, datetime.fromisoformat(AT))
    expected = is_email(email.strip())
    assert {path: v is not None for path, v in verdicts.items()} == dict.fromkeys(
        verdicts, expected
    )


IDS = [
    "c-1",
    "  spaced  ",
    "日本",
    "\u2028line",
    "tab\there",
    '"quoted"\\',
    "x" * MAX_BYTES,  # the event grows past the limit
    "",
    "\x00reserved",
]


@pytest.mark.parametrize("customer_id", IDS)
def test_a_customer_id_is_taken_or_refused_alike(customer_id: str, tmp_path: Path) -> None:
    email = "ada@example.com"
    verdicts = {
        "http event": by_http_event(customer_id, email, AT),
        "http command": by_http_command(customer_id, email, AT),
        "bootstrap": by_bootstrap(customer_id, email, AT),
    }
    if "\x00" not in customer_id:  # no CSV file holds a NUL
        verdicts["native bootstrap"] = by_native_bootstrap(customer_id, email, AT, tmp_path)
    seen = {_seen(v) for v in verdicts.values()}
    assert len(seen) == 1, verdicts
    accepted = seen.pop()
    assert (accepted is not None) == (customer_id in IDS[:-3])


# Update times as an event (JSON) and as a CSV cell carry them, and the time they name.
TIMES: list[tuple[Timestamp, str, int | None]] = [
    (AT, AT, AT_MS),
    ("2024-03-05T11:15:00+01:00", "2024-03-05T11:15:00+01:00", AT_MS),
    ("2024-03-05T10:15:00", "2024-03-05T10:15:00", AT_MS),  # naive: UTC
    ("2024-03-05T10:15:00.250Z", "2024-03-05T10:15:00.250Z", AT_MS + 250),
    ("2024-03-05", "2024-03-05", AT_MS - (10 * 3600 + 15 * 60) * 1000),
    (1_709_633_700, "1709633700", AT_MS),
    (1_709_633_700.25, "1709633700.25", AT_MS + 250),
    (0, "0", 0),
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", 0),
    ((NOW_MS + SKEW_MS) / 1000, str((NOW_MS + SKEW_MS) / 1000), NOW_MS + SKEW_MS),
    ((NOW_MS + SKEW_MS) / 1000 + 1, str((NOW_MS + SKEW_MS) / 1000 + 1), None),  # the future
    ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z", None),
    (-5, "-5", None),
    (1_709_633_700_000, "1709633700000", None),  # milliseconds
    ("10000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", None),
    ("not a time", "not a time", None),
    ("", "", None),
]


@pytest.mark.parametrize(("as_json", "as_cell", "ms"), TIMES)
def test_an_update_time_is_read_alike(
    as_json: Timestamp, as_cell: str, ms: int | None, tmp_path: Path
) -> None:
    email = "ada@example.com"
    verdicts = {
        "http event": by_http_event(email, email, as_json),
        "http command": by_http_command(email, email, as_json),
        "amqp": by_amqp(email, as_json),
        "bootstrap": by_bootstrap(email, email, as_cell),
        "native bootstrap": by_native_bootstrap(email, email, as_cell, tmp_path),
    }
    times = {path: None if v is None else v.timestamp for path, v in verdicts.items()}
    assert times == dict.fromkeys(verdicts, ms)


_INSTANTS = st.datetimes(
    min_value=datetime(1969, 12, 31, 23, 59, 50),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda at: at.replace(microsecond=0))


@settings(max_examples=200, deadline=None)
@given(at=_INSTANTS)
@example(at=datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC))  # -1 s: not the "unknown" time
@example(at=datetime(1970, 1, 1, tzinfo=UTC))
@example(at=datetime.fromtimestamp((NOW_MS + SKEW_MS) / 1000, UTC))
@example(at=datetime.fromtimestamp((NOW_MS + SKEW_MS) / 1000, UTC) + timedelta(seconds=1))
def test_a_change_log_time_is_read_as_the_same_instant_elsewhere(at: datetime) -> None:
    email = "ada@example.com"
    iso = at.isoformat()
    paths: dict[str, Callable[[], Verdict]] = {
        "changelog": lambda: by_changelog(email, at),
        "http event": lambda: by_http_event(email, email, iso),
        "amqp": lambda: by_amqp(email, iso),
        "bootstrap": lambda: by_bootstrap(email, email, iso),
    }
    times = {path: _seen(verdict()) for path, verdict in paths.items()}
    assert len(set(times.values())) == 1, times
