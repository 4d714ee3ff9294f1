from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codecs.timestamps import MAX_EPOCH_MS, ms_to_seconds, to_epoch_ms
from streams.errors import InvalidEventError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1570001049, 1570001049000),
        (1570001049.25, 1570001049250),
        (1570001049.0005, 1570001049000),  # x1000 gives .5 exactly: half to even
        (0.0015, 2),  # 1.5 ms: half to even
        (0.0025, 2),  # 2.5 ms: half to even
        (-1, -1),
        (-1.0, -1),
        ("2019-10-02T07:24:09.25Z", 1570001049250),
        ("2019-10-02T07:24:09.25+00:00", 1570001049250),
        ("2019-10-02T09:24:09.25+02:00", 1570001049250),
        ("2019-10-02T07:24:09.25", 1570001049250),  # naive means UTC
        ("2019-10-02", 1569974400000),
        ("1970-01-01T00:00:00.0015Z", 2),
        ("1970-01-01T00:00:00.0025Z", 2),
        ("1970-01-01T00:00:00.0035Z", 4),
        ("9999-12-31T23:59:59.999Z", MAX_EPOCH_MS),
        (253402300799, 253402300799000),
    ],
)
def test_accepts(value: object, expected: int) -> None:
    assert to_epoch_ms(value, "ts") == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        [1],
        {"s": 1},
        -2,
        -0.5,
        math.nan,
        math.inf,
        -math.inf,
        253402300800,  # year 10000
        1570001049250,  # milliseconds sent as seconds
        1e300,
        "yesterday",
        "",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",  # after 9999 in UTC
        "10000-01-01T00:00:00Z",
    ],
)
def test_rejects(value: object) -> None:
    with pytest.raises(InvalidEventError) as info:
        to_epoch_ms(value, "update_timestamp")
    assert info.value.reason == "bad_timestamp"
    assert "update_timestamp" in info.value.detail


def test_milliseconds_hint() -> None:
    with pytest.raises(InvalidEventError, match="milliseconds"):
        to_epoch_ms(1570001049250, "ts")


def test_iso_detail_does_not_echo_value() -> None:
    with pytest.raises(InvalidEventError) as info:
        to_epoch_ms("john.doe@example.com", "ts")
    assert "example.com" not in str(info.value)


@pytest.mark.parametrize(
    ("ms", "seconds"),
    [(-1, -1), (0, 0), (1570001049000, 1570001049), (1570001049250, 1570001049.25)],
)
def test_ms_to_seconds(ms: int, seconds: float) -> None:
    result = ms_to_seconds(ms)
    assert result == seconds
    assert type(result) is type(seconds)


@given(st.integers(min_value=0, max_value=MAX_EPOCH_MS))
def test_ms_seconds_roundtrip(ms: int) -> None:
    assert to_epoch_ms(ms_to_seconds(ms), "ts") == ms
