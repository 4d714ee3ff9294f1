"""Tracking bodies to per-command results and records: pure parsing, no broker."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codecs.events import EventDecoder
from streams.ingest.binding import SourceBinding
from streams.ingest.track import TrackOptions, TrackRequestError, parse_track_body
from streams.model import Op

NOW_MS = 1_700_000_000_123
DECODER = EventDecoder(max_event_bytes=4096, max_properties=20, max_clock_skew_ms=300_000)
OPTIONS = TrackOptions()
TRACK = SourceBinding("track")
ANY_OP = frozenset(Op)


def parse(body: object, options: TrackOptions = OPTIONS, binding: SourceBinding = TRACK) -> Any:
    return parse_track_body(orjson.dumps(body), DECODER, options, binding, NOW_MS)


def customers(data: dict[str, Any]) -> dict[str, Any]:
    return {"name": "customers", "data": data}


def decoded(record: tuple[bytes, bytes]) -> Any:
    key, value = record
    return DECODER.decode(key, value, -1, NOW_MS)


def test_the_bloomreach_example_is_answered_command_by_command() -> None:
    batch = parse(
        {
            "commands": [
                {"name": "system/time"},
                {"name": "system/cookie"},
                customers(
                    {
                        "customer_ids": {"registered": "mgalik"},
                        "properties": {"first_name": "Marian", "last_name": "Galik"},
                        "update_timestamp": 1570001049,
                    }
                ),
            ]
        }
    )
    assert batch.results[0] == {"success": True, "time": NOW_MS / 1000}
    assert batch.results[1]["success"] is False
    assert batch.results[1]["reason"] == "unsupported_command"
    assert batch.results[2] == {"success": True}
    assert (batch.accepted, batch.rejected) == (2, 1)
    [record] = batch.records
    event = decoded(record)
    assert record[0] == b"mgalik"
    assert event.customer_id == "mgalik"
    assert event.source == "track"
    assert event.op is Op.UPSERT
    assert event.timestamp == 1_570_001_049_000
    assert event.properties == {"first_name": "Marian", "last_name": "Galik"}
    assert event.event_id is None


def test_without_update_timestamp_the_receive_time_is_stamped_in_the_event() -> None:
    batch = parse({"commands": [customers({"customer_ids": {"registered": "c-1"}})]})
    [record] = batch.records
    assert orjson.loads(record[1])["update_timestamp"] == NOW_MS / 1000
    # The record timestamp passed here (-1) is ignored: the event carries its own time.
    assert decoded(record).timestamp == NOW_MS


def test_commands_are_written_as_the_keys_source_with_their_event_id() -> None:
    batch = parse(
        {"commands": [customers({"customer_ids": {"registered": "c-1"}, "event_id": "e-7"})]},
        binding=SourceBinding("web"),
    )
    event = decoded(batch.records[0])
    assert (event.source, event.event_id) == ("web", "e-7")


def test_the_first_configured_id_kind_present_names_the_customer() -> None:
    options = TrackOptions(id_kinds=("registered", "email_id"))
    batch = parse(
        {
            "commands": [
                customers({"customer_ids": {"email_id": "e-1", "registered": "r-1"}}),
                customers({"customer_ids": {"email_id": "e-2", "cookie": "k"}}),
                customers({"customer_ids": {"cookie": "k"}}),
                customers({"customer_ids": {"registered": 42}}),
            ]
        },
        options,
    )
    assert [key for key, _ in batch.records] == [b"r-1", b"e-2"]
    assert batch.results[2]["reason"] == "missing_customer_id"
    assert "registered, email_id" in batch.results[2]["error"]
    assert batch.results[3]["reason"] == "bad_type"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("not an object", "bad_command"),
        ({"data": {}}, "bad_command"),
        ({"name": "customers"}, "bad_command"),
        ({"name": "customers", "data": {"customer_ids": "c-1"}}, "missing_customer_id"),
        ({"name": "customers/events", "data": {}}, "unsupported_command"),
        ({"name": "purchase"}, "unknown_command"),
        ({"name": "system/time", "command_id": 1}, "unknown_field"),
        (customers({"customer_ids": {"registered": "c"}, "extra": 1}), "unknown_field"),
        (customers({"customer_ids": {"registered": "c"}, "properties": []}), "bad_type"),
        (customers({"customer_ids": {"registered": "c"}, "properties": {"a": [1]}}), "bad_type"),
        (
            customers({"customer_ids": {"registered": "c"}, "update_timestamp": "x"}),
            "bad_timestamp",
        ),
        (
            customers({"customer_ids": {"registered": "c"}, "update_timestamp": 4_000_000_000}),
            "future_timestamp",
        ),
        (customers({"customer_ids": {"registered": "\x00c"}}), "bad_type"),
    ],
)
def test_invalid_commands_get_a_precise_reason(command: object, reason: str) -> None:
    batch = parse({"commands": [command]})
    assert batch.records == []
    [result] = batch.results
    assert result["success"] is False
    assert result["reason"] == reason
    assert result["error"]


def test_native_events_one_or_an_array_are_validated_like_the_processor() -> None:
    good = {"customer_id": "c-1", "source": "crm", "properties": {"city": None}}
    single = parse(good, binding=SourceBinding("crm"))
    assert single.results == [{"success": True}]
    assert decoded(single.records[0]).properties == {"city": None}
    batch = parse(
        [good, {"customer_id": "c-2"}, 7, {**good, "op": "delete"}, {**good, "x": 1}],
        binding=SourceBinding("crm", ANY_OP),
    )
    reasons = [result.get("reason") for result in batch.results]
    assert reasons == [None, "missing_source", "not_an_object", "bad_op", "unknown_field"]
    assert [key for key, _ in batch.records] == [b"c-1"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "bad_json"),
        (b"", 400, "bad_json"),
        (b"42", 400, "bad_shape"),
        (b'"commands"', 400, "bad_shape"),
        (b'{"commands": {}}', 400, "bad_shape"),
        (b'{"commands": [], "project": "x"}', 400, "bad_shape"),
        (b'{"commands": []}', 400, "empty"),
        (b"[]", 400, "empty"),
        (b'{"commands": [1, 2, 3, 4]}', 413, "too_many_commands"),
        (b"[1, 2, 3, 4]", 413, "too_many_commands"),
    ],
)
def test_whole_request_errors(body: bytes, status: int, reason: str) -> None:
    with pytest.raises(TrackRequestError) as caught:
        parse_track_body(body, DECODER, TrackOptions(max_commands=3), TRACK, NOW_MS)
    assert (caught.value.status, caught.value.reason) == (status, reason)


def test_a_native_event_of_another_source_or_a_delete_not_allowed_is_refused() -> None:
    web = {"customer_id": "c-1", "source": "web", "properties": {"city": "Brno"}}
    crm = {**web, "source": "crm", "update_timestamp": NOW_MS / 1000 + 290}
    delete = {"customer_id": "c-1", "source": "web", "op": "delete", "update_timestamp": 1}
    batch = parse([web, crm, delete], binding=SourceBinding("web"))
    assert [result.get("reason") for result in batch.results] == [
        None,
        "source_not_allowed",
        "op_not_allowed",
    ]
    assert "'web', not 'crm'" in batch.results[1]["error"]
    assert "may not delete" in batch.results[2]["error"]
    assert [decoded(record).source for record in batch.records] == ["web"]
    assert batch.rejected_reasons == {"source_not_allowed": 1, "op_not_allowed": 1}

    allowed = parse([delete], binding=SourceBinding("web", ANY_OP))
    assert allowed.results == [{"success": True}]
    assert decoded(allowed.records[0]).op is Op.DELETE


def test_errors_never_echo_an_email_address() -> None:
    batch = parse({"commands": [{"name": "marian.galik@example.com"}]})
    assert "marian.galik@" not in batch.results[0]["error"]
    assert "m***@example.com" in batch.results[0]["error"]


# -- properties ---------------------------------------------------------------------------

ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)  # fmt: skip
valid = st.builds(
    lambda customer, props, ts: customers(
        {"customer_ids": {"registered": customer}, "properties": props, "update_timestamp": ts}
    ),
    ids,
    st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=4),
    st.integers(0, NOW_MS // 1000),
)
invalid = st.one_of(
    st.just({"name": "nope"}),
    st.builds(lambda customer: customers({"customer_ids": {"cookie": customer}}), ids),
    st.builds(
        lambda n: customers({"customer_ids": {"registered": "c"}, "properties": n}),
        st.integers(0, 9),
    ),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(valid, invalid), min_size=1, max_size=30))
def test_every_command_gets_one_result_in_order_and_every_record_decodes(
    commands: list[dict[str, Any]],
) -> None:
    batch = parse({"commands": commands})
    assert len(batch.results) == len(commands)
    assert batch.accepted + batch.rejected == len(commands)
    expected = [c["data"] for c in commands if c in valid_commands(commands)]
    assert len(batch.records) == len(expected) == batch.accepted
    for record, data in zip(batch.records, expected, strict=True):
        event = decoded(record)
        assert record[0] == data["customer_ids"]["registered"].encode()
        assert event.properties == data["properties"]
        assert event.timestamp == data["update_timestamp"] * 1000
    for command, result in zip(commands, batch.results, strict=True):
        assert result["success"] is (command in valid_commands(commands))


def valid_commands(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c
        for c in commands
        if c.get("name") == "customers"
        and "registered" in c["data"]["customer_ids"]
        and isinstance(c["data"].get("properties"), dict)
    ]


bindings = st.builds(
    SourceBinding,
    st.sampled_from(["crm", "web", "track"]),
    st.sampled_from([frozenset({Op.UPSERT}), frozenset({Op.DELETE}), ANY_OP]),
)
native_events = st.builds(
    lambda customer, source, op: {
        "customer_id": customer,
        "source": source,
        "op": op,
        "update_timestamp": NOW_MS // 1000,
    },
    ids,
    st.sampled_from(["crm", "web", "track"]),
    st.sampled_from(["upsert", "delete"]),
)


@settings(max_examples=150, deadline=None)
@given(bindings, st.lists(native_events, min_size=1, max_size=20), st.lists(valid, max_size=5))
def test_a_key_writes_only_as_its_source_with_its_ops(
    binding: SourceBinding, events: list[dict[str, Any]], commands: list[dict[str, Any]]
) -> None:
    native = parse(events, binding=binding)
    for event, result in zip(events, native.results, strict=True):
        allowed = event["source"] == binding.source and Op(event["op"]) in binding.ops
        assert result["success"] is allowed
    records = native.records
    if commands:
        records += parse({"commands": commands}, binding=binding).records
    for record in records:
        event = decoded(record)
        assert event.source == binding.source
        assert event.op in binding.ops


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["commands", "name", "data", "customer_id", "source", "x"]),
            children,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_gets_results_or_a_request_error_never_a_crash(doc: object) -> None:
    try:
        batch = parse(doc, TrackOptions(max_commands=10))
    except TrackRequestError as exc:
        status = exc.status
        assert status in (400, 413)
        return
    assert batch.accepted + batch.rejected == len(batch.results) >= 1
    for record in batch.records:
        decoded(record)
