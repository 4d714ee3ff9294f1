"""Cell conversions: examples, rejections and the algebra (round trips) under hypothesis."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.bootstrap.convert import (
    ConversionError,
    datetime_converter,
    epoch_ms,
    iso_datetimes_to_seconds,
    ms_to_seconds,
    parse_since,
    to_bool,
    to_customer_id,
    to_email,
    to_float,
    to_int,
    to_string,
)
from streams.codecs.timestamps import MAX_EPOCH_MS, to_epoch_ms

PRAGUE = ZoneInfo("Europe/Prague")
I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
EPOCH_MS = st.integers(min_value=0, max_value=MAX_EPOCH_MS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), (" -7 ", -7), ("3.0", 3), (12, 12), (5.0, 5), (Decimal("8"), 8)],
)
def test_to_int_accepts_whole_numbers(value: object, expected: int) -> None:
    assert to_int(value) == expected


@pytest.mark.parametrize("value", ["4.5", "abc", "", True, 1.5, float("nan"), [1]])
def test_to_int_rejects_the_rest(value: object) -> None:
    with pytest.raises(ConversionError) as caught:
        to_int(value)
    assert caught.value.reason == "bad_int"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "x", float("inf"), True, None])
def test_to_float_rejects_non_finite_and_non_numbers(value: object) -> None:
    with pytest.raises(ConversionError, match="bad_float"):
        to_float(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), (" YES ", True), ("1", True), ("f", False), ("No", False), (0, False)],
)
def test_to_bool_spellings(value: object, expected: bool) -> None:
    assert to_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, 1.0, None])
def test_to_bool_rejects_other_values(value: object) -> None:
    with pytest.raises(ConversionError, match="bad_bool"):
        to_bool(value)


@pytest.mark.parametrize(
    "value", ["a@example.com", " first.last+tag@mail.example.co.uk ", "x_y@sub-domain.example"]
)
def test_valid_emails(value: str) -> None:
    assert to_email(value) == value.strip()


@pytest.mark.parametrize(
    "value", ["plain", "a@b", "a@@example.com", "a b@example.com", "a@-example.com", "@x.org"]
)
def test_invalid_emails_are_rejected_without_echoing_the_value(value: str) -> None:
    with pytest.raises(ConversionError) as caught:
        to_email(value)
    assert caught.value.reason == "bad_email"
    assert value.strip() not in str(caught.value)


def test_to_string_writes_scalars_and_refuses_structures() -> None:
    assert to_string(True) == "true"
    assert to_string(Decimal("1.50")) == "1.50"
    assert to_string(date(2026, 11, 1)) == "2026-11-01"
    with pytest.raises(ConversionError, match="bad_string"):
        to_string({"a": 1})


def test_customer_ids_are_text_or_whole_numbers() -> None:
    assert to_customer_id("c-1") == "c-1"
    assert to_customer_id(42) == "42"
    for bad in ("\x00meta", 4.2, True):
        with pytest.raises(ConversionError, match="bad_id"):
            to_customer_id(bad)


def test_timestamps_in_every_supported_form() -> None:
    expected = 1_762_000_000_000
    assert epoch_ms(1_762_000_000, UTC) == expected
    assert epoch_ms("1762000000", UTC) == expected
    assert epoch_ms("1762000000.0", UTC) == expected
    assert epoch_ms("2025-11-01T12:26:40Z", UTC) == expected
    assert epoch_ms("2025-11-01T13:26:40", PRAGUE) == expected  # naive: the mapping's timezone
    assert epoch_ms(datetime(2025, 11, 1, 12, 26, 40, tzinfo=UTC), PRAGUE) == expected
    assert epoch_ms(date(1970, 1, 2), UTC) == 86_400_000


@pytest.mark.parametrize("value", ["1762000000000", "yesterday", "-5", "1969-12-31", True])
def test_bad_update_times_are_rejected(value: object) -> None:
    with pytest.raises(ConversionError, match="bad_timestamp"):
        epoch_ms(value, UTC, "bad_timestamp")


def test_milliseconds_get_a_hint() -> None:
    with pytest.raises(ConversionError, match="milliseconds"):
        epoch_ms(1_762_000_000_000, UTC, "bad_timestamp")


def test_datetime_properties_may_predate_1970() -> None:
    assert epoch_ms("1945-05-09", UTC, before_1970=True) == -777_859_200_000


def test_since_accepts_durations_and_instants() -> None:
    now = 1_800_000_000_000
    assert parse_since("24h", now) == now - 86_400_000
    assert parse_since("30m", now) == now - 1_800_000
    assert parse_since("2w", now) == now - 14 * 86_400_000
    assert parse_since("2026-11-01T00:00Z", now) == 1_793_491_200_000
    assert parse_since("2026-11-01T01:00", now, PRAGUE) == 1_793_491_200_000
    with pytest.raises(ConversionError, match="bad_since"):
        parse_since("last tuesday", now)


@given(I64)
def test_int_text_round_trips(value: int) -> None:
    assert to_int(str(value)) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_round_trips(value: float) -> None:
    assert to_float(repr(value)) == value


@given(EPOCH_MS)
def test_seconds_we_write_decode_to_the_same_milliseconds(ms: int) -> None:
    # What the processor's decoder makes of the update_timestamp a bootstrap event carries.
    assert to_epoch_ms(ms_to_seconds(ms), "update_timestamp") == ms
    assert epoch_ms(ms_to_seconds(ms), UTC) == ms


@given(
    EPOCH_MS.filter(lambda ms: ms < 253_402_214_400_000),  # a day before the end: offsets fit
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_iso_text_in_any_offset_is_the_same_instant(ms: int, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(zone)
    assert epoch_ms(moment.isoformat(timespec="milliseconds"), UTC) == ms
    # A naive wall-clock time means the same instant when the mapping names its zone.
    naive = moment.replace(tzinfo=None).isoformat(timespec="milliseconds")
    assert epoch_ms(naive, zone) == ms
    assert epoch_ms(moment, PRAGUE) == ms


@given(EPOCH_MS.filter(lambda ms: ms % 1000 == 0))
def test_seconds_and_iso_agree(ms: int) -> None:
    iso = datetime.fromtimestamp(ms // 1000, UTC).isoformat()
    assert epoch_ms(str(ms // 1000), UTC) == epoch_ms(iso, UTC) == ms


@given(st.floats(min_value=0, max_value=MAX_EPOCH_MS / 1000))
def test_float_seconds_round_to_the_millisecond_like_the_decoder(seconds: float) -> None:
    ms = epoch_ms(seconds, UTC)
    assert ms == to_epoch_ms(seconds, "update_timestamp")
    assert math.isclose(ms / 1000, seconds, abs_tol=0.0005)


ZONES = [UTC, PRAGUE, ZoneInfo("America/St_Johns"), timezone(timedelta(hours=-9, minutes=-30))]
ISO_FORMS = ["date", "seconds", "milliseconds", "microseconds", "minutes"]


def _iso(moment: datetime, form: str) -> str:
    return moment.date().isoformat() if form == "date" else moment.isoformat(timespec=form)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(ZONES) | st.timezones(),
        allow_imaginary=True,  # wall times a DST change skips: the fold rules must agree too
    ),
    st.booleans(),
    st.sampled_from(ISO_FORMS),
    st.sampled_from(ZONES),
)
def test_iso_datetimes_in_a_batch_convert_as_one_at_a_time(
    moment: datetime, naive: bool, form: str, zone: object
) -> None:
    text = _iso(moment.replace(tzinfo=None) if naive else moment, form)
    convert = datetime_converter(zone)  # type: ignore[arg-type]
    (quick,) = iso_datetimes_to_seconds([text], zone)  # type: ignore[arg-type]
    try:
        expected: object = convert(text)
    except ConversionError:
        assert quick is None  # the one-at-a-time converter reports it
        return
    assert quick is not None  # ISO text of this form is the batch's to convert
    assert quick == expected
    assert type(quick) is type(expected)


@given(
    st.lists(st.text(max_size=30) | st.integers() | st.none(), max_size=8), st.sampled_from(ZONES)
)
def test_a_batch_leaves_to_the_single_converter_what_is_not_plain_iso(
    values: list[object], zone: object
) -> None:
    convert = datetime_converter(zone)  # type: ignore[arg-type]
    for value, quick in zip(values, iso_datetimes_to_seconds(values, zone), strict=True):  # type: ignore[arg-type]
        if quick is not None:
            assert quick == convert(value)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "text",
    [
        "2026-10-25T02:30:00",  # Prague's clocks go back: this wall time happens twice
        "2026-03-29T02:30:00",  # and forward: this one never happens
        "2026-11-01T01:30:00",  # St. John's goes back
        "2026-03-08T02:30:00",  # and forward
        "2026-05-01T12:00:00.000500",  # half a millisecond rounds up, as the decoder rounds
        "2026-05-01T12:00:00.001499",
        "1969-12-31T23:59:59.999500",
        "0001-01-01",  # before the epoch's floor in zones east of UTC
        "1985-03-02",
    ],
)
def test_a_batch_agrees_at_the_edges(text: str, zone: object) -> None:
    convert = datetime_converter(zone)  # type: ignore[arg-type]
    (quick,) = iso_datetimes_to_seconds([text], zone)  # type: ignore[arg-type]
    try:
        expected: object = convert(text)
    except ConversionError:
        assert quick is None
        return
    assert quick == expected
