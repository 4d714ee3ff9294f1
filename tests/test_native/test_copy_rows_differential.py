"""The Rust staging rows (``_native.copy_rows``) against the reference (``FoldedBatch.rows``,
the PostgreSQL sink's ``sql.upsert_row`` and ``sql.profile_row``): for generated shares, the COPY
text read back gives the same rows, the properties and stamps JSON byte for byte, in the same
order; a value the Rust code does not write exactly gives None (the sink then encodes in Python),
never a crash."""

from __future__ import annotations

import re
import struct
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streams._native import copy_rows, suspect_upserts
from streams.connect.records import SinkRecord
from streams.connect.sinks.postgres.sink import FoldedBatch, fold, refusal
from streams.connect.sinks.postgres.sql import Row
from streams.merge import MergePolicy
from streams.model import Op, Profile, PropertyState, Upsert

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
SOURCES = ["crm", "web", "erp", "ünï", "a\tb\\c", "", "😀"]

i64 = st.integers(I64_MIN, I64_MAX)
# No NUL and no lone surrogate: refusal() keeps them from the sink's encoders.
storable_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))
texts = storable_text | st.sampled_from(
    ['"', "\\", "\\\\N", "\t", "\n", "\r", "\r\n", "\x01\x1f\x7f", "\u2028", "😀", "\\.", "x" * 300]
)
# Around 1e16, where a float's JSON loses its fraction, and -0.0: the floats stamps mark.
MARKED_FLOATS = [1e16, -1e16, 1.5e17, -1.5e17, -0.0, 1e300, -5e300]
UNMARKED_FLOATS = [0.0, 5e-324, -2.2e-308, 1e15, 9999999999999998.0, -9999999999999998.0, 0.1]
# Halfway between two shortest decimals: orjson writes the even one.
TIED_FLOATS = [-1113178120592002.2, -233891771783429.62, 2152548015248394.2]
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [*UNMARKED_FLOATS, *TIED_FLOATS, 1e-7, 1e-5, 1.5e-7, *MARKED_FLOATS]
)
values = st.one_of(
    st.none(),
    st.booleans(),
    i64,
    st.sampled_from([I64_MIN, I64_MAX, 0, 1, -1]),
    floats,
    st.integers(-3, 3).map(float),
    texts,
)
timestamps = i64 | st.integers(-2, 2)
sources = st.sampled_from(SOURCES) | storable_text
names = st.sampled_from(["city", "é", 'q"', "a\\b", "t\tab", "😀"]) | storable_text
customers = (
    st.sampled_from(["c-1", "tab\there", "back\\slash", "nl\nx\r", "\\N", "😀"]) | storable_text
)


# Few (last_update, source) pairs, so that rows have a common pair, ties and stamps; equal
# sources as distinct objects too (a profile's need not be the same object).
few_timestamps = st.sampled_from([1, 2, 3, I64_MAX])
few_sources = st.sampled_from(["crm", "web", "a\tb\\c", "\\N"]).map(lambda s: "".join(list(s)))
states = st.dictionaries(
    names, st.builds(PropertyState, values, timestamps, sources), max_size=9
) | st.dictionaries(
    names, st.builds(PropertyState, values, few_timestamps, few_sources), max_size=20
)


@st.composite
def shares(draw: st.DrawFn) -> FoldedBatch:
    share = FoldedBatch([])
    for customer_id in draw(st.lists(customers, max_size=6, unique=True)):
        share.singles[customer_id] = Upsert(
            customer_id=customer_id,
            op=Op.UPSERT,
            properties=draw(states),
            deleted_at=None,
            source=draw(sources),
            event_id=draw(st.none() | st.just("e-1")),
            processed_at=0,
        )
    for customer_id in draw(st.lists(customers, max_size=6, unique=True)):
        profile = Profile(draw(states), draw(st.none() | timestamps))
        share.profiles[customer_id] = profile
    return share


_COPY_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_COPY_CHARS = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _field(text: str) -> str:
    return _COPY_ESCAPE.sub(lambda match: _COPY_CHARS[match.group(1)], text)


def _text(field: str) -> str | None:
    return None if field == r"\N" else _field(field)


def _int(field: str) -> int | None:
    return None if field == r"\N" else int(field)


def read_copy_text(data: bytes) -> list[Row]:
    """COPY text format back into rows (every special character in a field is escaped)."""
    text = data.decode()
    assert text == "" or text.endswith("\n")
    rows: list[Row] = []
    for line in text.split("\n")[:-1]:
        assert "\r" not in line  # PostgreSQL would end the line there
        customer_id, properties, last_update, source, stamps, deleted_at = line.split("\t")
        rows.append(
            (
                _field(customer_id),
                _field(properties),
                _int(last_update),
                _text(source),
                _text(stamps),
                _int(deleted_at),
            )
        )
    return rows


def _typed(value: Any) -> Any:
    """JSON values with their type, floats by their bits (so -0.0, 0.0 and 0 all differ)."""
    if isinstance(value, dict):
        return {name: _typed(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    return (type(value).__name__, value)


def _parsed(rows: list[Row]) -> list[tuple[Any, ...]]:
    return [
        (
            customer_id,
            _typed(orjson.loads(values)),
            at,
            source,
            stamps and _typed(orjson.loads(stamps)),
            deleted_at,
        )
        for customer_id, values, at, source, stamps, deleted_at in rows
    ]


@hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(share=shares())
def test_the_copy_text_holds_the_reference_rows(share: FoldedBatch) -> None:
    expected = list(share.rows())
    text = copy_rows(share.singles, share.profiles)
    assert text is not None
    actual = read_copy_text(text)
    assert actual == expected
    assert _parsed(actual) == _parsed(expected)


def test_an_empty_share_is_no_text() -> None:
    share = FoldedBatch([])
    share.singles["c-1"] = Upsert("c-1", Op.UPSERT, {}, None, "crm", None, 0)
    share.profiles["c-2"] = Profile()
    assert copy_rows(share.singles, share.profiles) == b""


def test_a_watermark_without_properties_is_a_row() -> None:
    share = FoldedBatch([])
    share.profiles["c\t1"] = Profile({}, -5)
    assert copy_rows(share.singles, share.profiles) == b"c\\t1\t{}\t\\N\t\\N\t\\N\t-5\n"


def test_the_first_of_the_most_common_pairs_is_the_rows_and_the_others_are_stamped() -> None:
    share = FoldedBatch([])
    share.profiles["c-1"] = Profile(
        {
            "a": PropertyState("x", 5, "web"),
            "b": PropertyState(1e16, 6, "crm"),
            "c": PropertyState(-0.0, 5, "web"),
            "d": PropertyState(2.5, 6, "crm"),
        }
    )
    text = copy_rows(share.singles, share.profiles)
    assert text == (
        b'c-1\t{"a":"x","b":1e+16,"c":-0.0,"d":2.5}\t5\tweb'
        b'\t{"b":[6,"crm",1],"c":[5,"web",-1],"d":[6,"crm"]}\t\\N\n'
    )
    assert read_copy_text(text) == list(share.rows())


class _Int(int):
    pass


class _Str(str):
    __slots__ = ()


UNWRITTEN: list[Any] = [
    float("nan"),
    float("inf"),
    -float("inf"),
    2**63,
    I64_MIN - 1,
    "\ud800",
    "a\x00b",
    _Int(1),
    _Str("x"),
    b"bytes",
    [1],
    {"a": 1},
]


def _single(value: Any = "x", last_update: Any = 1, **fields: Any) -> FoldedBatch:
    share = FoldedBatch([])
    upsert = Upsert(
        "c-1", Op.UPSERT, {"a": PropertyState(value, last_update, "?")}, None, "crm", None, 0
    )
    share.singles["c-1"] = upsert._replace(**fields)
    return share


@pytest.mark.parametrize("value", UNWRITTEN, ids=repr)
def test_a_value_the_rust_code_does_not_write_is_left_to_python(value: Any) -> None:
    share = _single(value)
    assert copy_rows(share.singles, share.profiles) is None
    profile_share = FoldedBatch([])
    profile_share.profiles["c-1"] = Profile({"a": PropertyState(value, 1, "crm")})
    assert copy_rows(profile_share.singles, profile_share.profiles) is None


@pytest.mark.parametrize(
    "share",
    [
        _single(last_update=2**63),
        _single(last_update=1.0),
        _single(last_update=True),
        _single(customer_id="c\x00"),
        _single(customer_id="\udc80"),
        _single(source="s\x00"),
        _single(properties={"a\x00": PropertyState(1, 1, "crm")}),
        _single(properties={1: PropertyState(1, 1, "crm")}),
        _single(properties={"a": (1, 1)}),
        _single(properties={"a": 1}),
    ],
)
def test_a_share_the_rust_code_cannot_read_exactly_is_left_to_python(share: FoldedBatch) -> None:
    assert copy_rows(share.singles, share.profiles) is None


@pytest.mark.parametrize("deleted_at", [2**63, 1.0, "1"])
def test_a_watermark_beyond_64_bits_is_left_to_python(deleted_at: Any) -> None:
    share = FoldedBatch([])
    share.profiles["c-1"] = Profile({}, deleted_at)
    assert copy_rows(share.singles, share.profiles) is None


# ----- suspect_upserts: the screen that spares the sink's Python refusal() on most records -----

unstorable_values = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), 2**63, I64_MIN - 1, "\ud800", "a\x00b"]
)
maybe_bad_text = texts | st.sampled_from(["\x00", "c\x00", "\udc80", "ok\ud83d"])


@st.composite
def any_upserts(draw: st.DrawFn) -> Upsert:
    """Upserts of every kind the sink meets, storable or not (refusal() says which)."""
    properties = draw(
        st.dictionaries(
            maybe_bad_text,
            st.builds(
                PropertyState,
                values | unstorable_values | st.sampled_from([_Int(3), _Str("s")]),
                timestamps | st.sampled_from([2**63, I64_MIN - 1]),
                maybe_bad_text,
            ),
            max_size=4,
        )
    )
    return Upsert(
        customer_id=draw(maybe_bad_text),
        op=draw(st.sampled_from([Op.UPSERT, Op.DELETE])),
        properties=properties,
        deleted_at=draw(st.none() | timestamps | st.sampled_from([2**63, I64_MIN - 1])),
        source=draw(maybe_bad_text),
        event_id=None,
        processed_at=0,
    )


@hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts=st.lists(any_upserts(), max_size=8))
def test_every_refused_upsert_is_a_suspect_and_every_other_one_is_written(
    upserts: list[Upsert],
) -> None:
    suspects = set(suspect_upserts(upserts))
    refused = {index for index, upsert in enumerate(upserts) if refusal(upsert) is not None}
    assert refused <= suspects
    for index, upsert in enumerate(upserts):
        if index in suspects or upsert.op is not Op.UPSERT:
            continue
        share = FoldedBatch([])
        share.singles[upsert.customer_id] = upsert
        assert copy_rows(share.singles, share.profiles) is not None


def test_a_screened_fold_refuses_what_the_reference_refuses() -> None:
    policy = MergePolicy({})
    good = Upsert("c-1", Op.UPSERT, {"a": PropertyState(1, 5, "crm")}, None, "crm", None, 0)
    records = [
        SinkRecord("t", 0, offset, None, b"", upsert)
        for offset, upsert in enumerate(
            [
                good,
                good._replace(customer_id="c-2", source="s\x00"),
                good._replace(customer_id="c-3", properties={"a": PropertyState(2**63, 5, "x")}),
                good._replace(customer_id="c-4", deleted_at=2**63),
                good._replace(properties={"b": PropertyState(float("nan"), 6, "crm")}),
                good._replace(customer_id="c-5", properties={"a": PropertyState(_Int(1), 5, "x")}),
            ]
        )
    ]
    screened, reference = fold(records, policy, screened=True), fold(records, policy)
    assert [(r.record.offset, r.reason) for r in screened.rejected] == [
        (1, "nul_character"),
        (2, "integer_out_of_range"),
        (3, "timestamp_out_of_range"),
        (4, "non_finite_float"),
    ]
    assert screened.rejected == reference.rejected
    assert screened.singles == reference.singles
    assert screened.profiles == reference.profiles
