"""Chunks of rows to events: the template and dict paths agree with the per-value converters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.bootstrap.convert import (
    ConversionError,
    datetime_converter,
    ms_to_seconds,
    to_bool,
    to_email,
    to_float,
    to_int,
)
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.rows import ChunkConverter, ChunkOutput, RowLimits
from streams.codecs.events import EventDecoder
from streams.errors import ConfigError

SNAPSHOT_MS = 1_763_800_000_123
LIMITS = RowLimits(max_timestamp_ms=2_000_000_000_000, max_event_bytes=256 * 1024)
HEADER = ["id", "name", "email", "age", "score", "flag", "born", "status", "modified", "updated"]
TYPED = {
    "ids": [{"from_column": "id"}],
    "properties": [
        {"from_column": "name", "to_property": "name", "type": "string"},
        {"from_column": "email", "to_property": "email", "type": "string"},
        {"from_column": "age", "to_property": "age", "type": "int"},
        {"from_column": "score", "to_property": "score", "type": "float"},
        {"from_column": "flag", "to_property": "flag", "type": "bool"},
        {"from_column": "born", "to_property": "born", "type": "datetime"},
    ],
    "constant_columns": [{"to_property": "origin", "value": "crm"}],
    "source": "crm-import",
}
CONVERTERS = {
    "age": to_int,
    "score": to_float,
    "flag": to_bool,
    "email": to_email,
    "born": datetime_converter(UTC),
}


def converter(columns: list[str] | None = HEADER, **changes: Any) -> ChunkConverter:
    options: dict[str, Any] = {
        "job_id": "job",
        "snapshot_ms": SNAPSHOT_MS,
        "since_ms": None,
        "limits": LIMITS,
        "text_source": columns is not None,
    }
    options.update({k: changes.pop(k) for k in list(changes) if k in options})
    return ChunkConverter(parse_mapping({**TYPED, **changes}), columns, **options)


def row(**cells: str) -> list[str]:
    base = {"id": "c-1", "status": "ACTIVE", "modified": "2026-11-20T00:00:00Z", "updated": "1"}
    base.update(cells)
    return [base.get(name, "") for name in HEADER]


def decoded(out: ChunkOutput) -> list[dict[str, Any]]:
    return [orjson.loads(payload) for payload in out.payloads]


def expected_event(line: int, cells: dict[str, str]) -> dict[str, Any] | str:
    """What one row must become, from the per-value converters alone (or the reject reason)."""
    if not cells["id"]:
        return "missing_id"
    properties: dict[str, Any] = {}
    for name in ("name", "email", "age", "score", "flag", "born"):
        text = cells[name]
        if text == "":
            continue
        convert = CONVERTERS.get(name)
        try:
            properties[name] = convert(text) if convert else text
        except ConversionError as exc:
            return exc.reason
    properties["origin"] = "crm"
    return {
        "customer_id": cells["id"],
        "source": "crm-import",
        "event_id": f"job:{line}",
        "update_timestamp": ms_to_seconds(SNAPSHOT_MS),
        "properties": properties,
    }


TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
NUMERIC = st.one_of(st.integers(-(10**20), 10**20).map(str), TEXT, st.just(""))
CELLS = st.fixed_dictionaries(
    {
        "id": st.one_of(st.just(""), TEXT.filter(lambda s: not s.startswith("\x00"))),
        "name": TEXT,
        "email": st.one_of(st.just(""), st.emails().map(str), TEXT),
        "age": NUMERIC,
        "score": st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr), NUMERIC),
        "flag": st.sampled_from(["true", "false", "YES", "n", "", "maybe", "1"]),
        "born": st.sampled_from(["1975-03-12", "2001-02-03T04:05:06+01:00", "", "1e9", "x"]),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=25))
def test_every_row_becomes_what_the_per_value_converters_say(rows: list[dict[str, str]]) -> None:
    lines = list(range(2, len(rows) + 2))
    out = converter().convert([row(**cells) for cells in rows], lines)
    expected = {line: expected_event(line, cells) for line, cells in zip(lines, rows, strict=True)}
    produced = {event["event_id"]: event for event in decoded(out)}
    assert sorted(out.lines) == sorted(produced_lines(produced))
    for line, want in expected.items():
        if isinstance(want, str):
            assert (line, want) in {(r[0], r[1]) for r in out.rejected}
        else:
            assert produced[f"job:{line}"] == want
    assert len(out.payloads) + len(out.rejected) == len(rows)
    assert out.keys == [produced[f"job:{line}"]["customer_id"].encode() for line in out.lines]


def produced_lines(produced: dict[str, Any]) -> list[int]:
    return [int(key.split(":")[1]) for key in produced]


def test_events_pass_the_processors_decoder() -> None:
    cells = {"name": 'Ma"ri\\an\n', "email": "m@example.com", "age": "41", "score": "1200.50"}
    out = converter().convert([row(**cells, flag="yes", born="1984-09-30")], [7])
    decoder = EventDecoder(max_event_bytes=10_000, max_properties=100, max_clock_skew_ms=0)
    event = decoder.decode(b"c-1", out.payloads[0], -1, SNAPSHOT_MS)
    assert event.timestamp == SNAPSHOT_MS
    assert event.event_id == "job:7"
    assert dict(event.properties) == {
        "name": 'Ma"ri\\an\n',
        "email": "m@example.com",
        "age": 41,
        "score": 1200.5,
        "flag": True,
        "born": 465_350_400,
        "origin": "crm",
    }


def test_rejections_name_the_line_and_the_reason() -> None:
    rows = [
        row(id=""),
        row(email="nobody(at)example.com"),
        row(age="forty"),
        row(name="x" * 300),
        row(name="fine"),
    ]
    out = converter(limits=RowLimits(LIMITS.max_timestamp_ms, 250)).convert(rows, [2, 3, 4, 5, 6])
    assert [(line, reason) for line, reason, _ in out.rejected] == [
        (2, "missing_id"),
        (3, "bad_email"),
        (4, "bad_int"),
        (5, "too_large"),
    ]
    assert "nobody" not in str(out.rejected)
    assert out.lines == [6]


def test_update_timestamps_from_a_column() -> None:
    conv = converter(update_timestamp={"from_column": "updated"}, timezone="Europe/Prague")
    rows = [
        row(updated="1762000000"),
        row(updated="2025-11-01T13:26:40"),
        row(updated=""),
        row(updated="2099-01-01T00:00:00Z"),
        row(updated="soon"),
    ]
    out = conv.convert(rows, [2, 3, 4, 5, 6])
    assert [e["update_timestamp"] for e in decoded(out)] == [1_762_000_000, 1_762_000_000]
    assert out.stamps == [1_762_000_000, 1_762_000_000]
    reasons = [(line, reason) for line, reason, _ in out.rejected]
    assert reasons == [(4, "bad_timestamp"), (5, "future_timestamp"), (6, "bad_timestamp")]


def test_removals_become_deletes_without_their_properties() -> None:
    removal = {"column": "status", "values": ["opt_out"], "as": "delete"}
    rows = [row(status="OPT_OUT", age="not a number"), row(id="c-2", status="active")]
    out = converter(removal=removal).convert(rows, [2, 3])
    first, second = decoded(out)
    assert first == {
        "customer_id": "c-1",
        "source": "crm-import",
        "event_id": "job:2",
        "op": "delete",
        "update_timestamp": ms_to_seconds(SNAPSHOT_MS),
    }
    assert "op" not in second
    assert (out.deletes, out.opt_outs, out.rejected) == (1, 0, [])


def test_removals_as_an_opt_out_property() -> None:
    removal = {"column": "status", "values": ["OPT_OUT"], "as": "property"}
    out = converter(removal=removal).convert([row(status=" opt_out ", name="Eva")], [2])
    (event,) = decoded(out)
    assert event["properties"]["email_status"] == "opted_out"
    assert event["properties"]["name"] == "Eva"
    assert out.opt_outs == 1


def test_delta_mode_skips_rows_not_modified_since() -> None:
    since_ms = 1_763_596_800_000  # 2025-11-20T00:00Z
    conv = converter(modified_at_column="modified", since_ms=since_ms)
    rows = [
        row(modified="2025-11-19T23:59:59Z"),
        row(modified="2025-11-20T00:00:00Z"),
        row(modified=""),
        row(modified="1763600000"),
    ]
    out = conv.convert(rows, [2, 3, 4, 5])
    assert out.lines == [3, 5]
    assert out.skipped == 1
    assert [(line, reason) for line, reason, _ in out.rejected] == [(4, "bad_modified_at")]


def test_empty_cells_leave_properties_alone_or_unset_them() -> None:
    (skip,) = decoded(converter().convert([row(name="", age="")], [2]))
    assert "name" not in skip["properties"]
    assert "age" not in skip["properties"]
    (unset,) = decoded(converter(empty_values="null").convert([row(name="", age="")], [2]))
    assert unset["properties"]["name"] is None
    assert unset["properties"]["age"] is None


def test_dict_rows_and_database_values() -> None:
    born = datetime(1984, 9, 30, 12, 0, tzinfo=UTC)
    rows: list[Any] = [
        {"id": 42, "name": "Ada", "email": None, "age": 36, "score": Decimal("1.25"),
         "flag": True, "born": date(1984, 9, 30)},
        {"id": "c-2", "name": 7, "age": "12", "score": 3, "flag": "no", "born": born},
    ]  # fmt: skip
    first, second = decoded(converter(columns=None).convert(rows, [1, 2]))
    assert first["customer_id"] == "42"
    assert first["properties"] == {
        "name": "Ada",
        "age": 36,
        "score": 1.25,
        "flag": True,
        "born": 465_350_400,
        "origin": "crm",
    }
    assert second["properties"]["name"] == "7"
    assert second["properties"]["born"] == 465_393_600
    tuples = [tuple(r.get(name) for name in HEADER[:7]) for r in rows]
    assert decoded(converter(columns=HEADER[:7], text_source=False).convert(tuples, [1, 2])) == [
        first,
        second,
    ]


def test_missing_columns_are_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="email"):
        converter(columns=["id", "name"])


def test_a_nan_update_time_is_rejected_even_beside_good_ones() -> None:
    """min() and max() step over a NaN: the chunk-wide range check must not let one through."""
    out = converter(update_timestamp={"from_column": "updated"}).convert(
        [row(updated="1"), row(id="c-2", updated="nan"), row(id="c-3", updated="2")], [2, 3, 4]
    )
    assert out.lines == [2, 4]
    assert [(line, reason) for line, reason, _ in out.rejected] == [(3, "bad_timestamp")]
    assert out.stamps == [1.0, 2.0]


def test_a_boolean_update_or_modified_time_is_rejected_not_taken_as_0_or_1_second() -> None:
    """JSON sources carry typed values: true is not 1970-01-01T00:00:01Z (a bool is an int
    subclass, float(True) == 1.0), whether its chunk is otherwise good or not."""
    conv = converter(columns=None, update_timestamp={"from_column": "updated"})
    rows: list[Any] = [
        {"id": "c-1", "updated": 1_762_000_000},
        {"id": "c-2", "updated": True},
        {"id": "c-3", "updated": False},
        {"id": "c-4", "updated": 1_762_000_001.5},
    ]
    out = conv.convert(rows, [1, 2, 3, 4])
    assert out.lines == [1, 4]
    assert out.stamps == [1_762_000_000, 1_762_000_001.5]
    assert [(line, reason) for line, reason, _ in out.rejected] == [
        (2, "bad_timestamp"),
        (3, "bad_timestamp"),
    ]
    alone = conv.convert([{"id": "c-5", "updated": True}], [5])
    assert [(line, reason) for line, reason, _ in alone.rejected] == [(5, "bad_timestamp")]
    delta = converter(columns=None, modified_at_column="modified", since_ms=1_000).convert(
        [{"id": "c-6", "modified": True}, {"id": "c-7", "modified": 5}], [6, 7]
    )
    assert delta.lines == [7]
    assert [(line, reason) for line, reason, _ in delta.rejected] == [(6, "bad_modified_at")]
