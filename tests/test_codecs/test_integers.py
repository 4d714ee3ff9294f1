"""One rule for integers: outside [-2^63, 2^63 - 1] an integer literal is refused with the
reason ``integer_out_of_range``, wherever it sits in an event and on every path; a float (1e30)
is a float."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streams.codecs.events import EventDecoder, encode_change_event_avro
from streams.codecs.integers import I64_MAX, I64_MIN, loads_exact
from streams.errors import InvalidEventError
from streams.ingest.amqp.proca import ProcaOptions, map_message
from streams.ingest.binding import SourceBinding
from streams.ingest.track import TrackOptions, parse_track_body

NOW_MS = 1_700_000_000_000
TRACK = SourceBinding("track")
DECODER = EventDecoder(max_event_bytes=4096, max_properties=10, max_clock_skew_ms=300_000)
BOUNDARY = [I64_MIN - 1, I64_MIN, I64_MAX, I64_MAX + 1, 2**64 - 1, 2**64, 10**30, -(10**30)]
# Integers of any size, most of them near the edges of the range and of orjson's int reading.
INTEGERS = st.one_of(
    st.sampled_from(BOUNDARY),
    st.integers(I64_MIN - 3, I64_MIN + 3),
    st.integers(I64_MAX - 3, I64_MAX + 3),
    st.integers(2**64 - 3, 2**64 + 3),
    st.integers(),
    st.integers(-(10**40), 10**40),
)
# Where a literal may sit in a change event (the native event's JSON text, written by hand:
# orjson cannot write integers beyond 64 bits).
PLACES = {
    "property": '{"customer_id":"c-1","source":"crm","update_timestamp":1700000000,'
    '"properties":{"n":§}}',
    "update_timestamp": '{"customer_id":"c-1","source":"crm","update_timestamp":§}',
    "property_timestamp": '{"customer_id":"c-1","source":"crm","update_timestamp":1700000000,'
    '"properties":{"n":1},"property_timestamps":{"n":§}}',
    "customer_id": '{"customer_id":§,"source":"crm"}',
    "unknown_field": '{"customer_id":"c-1","source":"crm","extra":[1,{"deep":§}]}',
}


def written(template: str, value: object) -> str:
    """``template`` with ``value`` written where ``§`` stands."""
    return template.replace("§", str(value))


def decode(text: str) -> Any:
    return DECODER.decode(None, text.encode(), -1, NOW_MS)


def reason(text: str) -> str | None:
    try:
        decode(text)
    except InvalidEventError as exc:
        return exc.reason
    return None


def test_orjson_reads_integers_beyond_int64_as_floats_or_unsigned():
    """Why one check is not enough: the reading this module has to correct."""
    assert orjson.loads(str(I64_MAX + 1)) == I64_MAX + 1  # an int, out of range
    assert type(orjson.loads(str(2**64))) is float
    assert type(orjson.loads(str(I64_MIN - 1))) is float
    assert orjson.loads(str(I64_MIN - 1)) == I64_MIN  # rounded into the range!
    assert loads_exact(str(I64_MIN - 1).encode()) == I64_MIN - 1


@given(value=INTEGERS, place=st.sampled_from(sorted(PLACES)))
@example(value=I64_MIN - 1, place="property")
def test_the_processor_refuses_any_integer_out_of_range_wherever_it_sits(value, place):
    got = reason(written(PLACES[place], value))
    if I64_MIN <= value <= I64_MAX:
        assert got != "integer_out_of_range"
    else:
        assert got == "integer_out_of_range"


@pytest.mark.parametrize("value", [I64_MIN, I64_MAX, 0, -1])
def test_integers_at_the_edges_of_the_range_are_kept_exactly(value):
    event = decode(written(PLACES["property"], value))
    assert event.properties["n"] == value
    assert type(event.properties["n"]) is int


@pytest.mark.parametrize("literal", ["1e30", "-1e30", "1.0e19", "18446744073709551616.0", "1E300"])
def test_a_float_literal_is_a_float_however_large(literal):
    event = decode(written(PLACES["property"], literal))
    assert event.properties["n"] == float(literal)


def test_long_digit_strings_are_text_not_integers():
    event = decode(written(PLACES["property"], '"123456789012345678901234567890"'))
    assert event.properties["n"] == "123456789012345678901234567890"


def test_the_detail_names_where_the_integer_is():
    with pytest.raises(InvalidEventError) as caught:
        decode(written(PLACES["unknown_field"], 10**30))
    assert caught.value.detail == "extra[1].deep is an integer outside the signed 64-bit range"


@pytest.mark.parametrize("value", [I64_MIN, I64_MAX])
def test_avro_longs_at_the_edges_are_kept(value):
    doc = {"customer_id": "c-1", "source": "crm", "properties": {"n": value}}
    event = DECODER.decode(None, encode_change_event_avro(doc), -1, NOW_MS)
    assert event.properties["n"] == value


# -- tracking: the same reason, per command ------------------------------------------------


@given(value=INTEGERS)
def test_tracking_answers_each_command_with_the_same_rule(value):
    command = written(
        '{"name":"customers","data":{"customer_ids":{"registered":"c-1"},"properties":{"n":§}}}',
        value,
    )
    native = written('{"customer_id":"c-2","source":"track","properties":{"n":§}}', value)
    good = '{"name":"customers","data":{"customer_ids":{"registered":"c-3"},"properties":{}}}'
    body = f'{{"commands":[{command},{good}]}}'.encode()
    options = TrackOptions()
    batch = parse_track_body(body, DECODER, options, TRACK, NOW_MS)
    natives = parse_track_body(f"[{native}]".encode(), DECODER, options, TRACK, NOW_MS)
    assert batch.results[1] == {"success": True}
    if I64_MIN <= value <= I64_MAX:
        assert batch.results[0] == {"success": True}
        assert natives.results == [{"success": True}]
        assert orjson.loads(batch.records[0][1])["properties"]["n"] == value
    else:
        assert batch.results[0]["reason"] == "integer_out_of_range"
        assert natives.results[0]["reason"] == "integer_out_of_range"
        assert len(batch.records) == 1
        assert natives.records == []


# -- AMQP (Proca) ----------------------------------------------------------------------------

PROCA = (
    '{"schema":"proca:action:2","actionId":7,"action":{"actionType":"signature",'
    '"createdAt":§C,"customFields":{"n":§N}},"contact":{"email":"ada@example.com"}}'
)


@given(value=INTEGERS)
def test_a_proca_message_with_an_integer_out_of_range_is_refused(value):
    options = ProcaOptions(custom_field_prefix="cf_")
    bodies = [(1700000000, value), (value, 1)]
    for body in (PROCA.replace("§C", str(c)).replace("§N", str(n)) for c, n in bodies):
        try:
            mapped = map_message(body.encode(), options)
            for event in mapped.events:
                DECODER.encode(event, NOW_MS)
        except InvalidEventError as exc:
            got: str | None = exc.reason
        else:
            got = None
        if I64_MIN <= value <= I64_MAX:
            assert got != "integer_out_of_range"
        else:
            assert got == "integer_out_of_range"
