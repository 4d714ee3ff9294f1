"""Conversions of profile values to the field types of REST destinations and webhooks."""

from __future__ import annotations

import pytest

from streams.field_types import convert


@pytest.mark.parametrize(
    ("value", "field_type", "expected"),
    [
        ("7", "int", 7),
        (7.0, "int", 7),
        (1, "float", 1.0),
        (" 2.5 ", "float", 2.5),
        ("No", "bool", False),
        (1, "bool", True),
        (True, "string", "true"),
        (1.5, "string", "1.5"),
        (0, "datetime", "1970-01-01T00:00:00.000Z"),
        ("2024-01-02T03:04:05+01:00", "datetime", "2024-01-02T02:04:05.000Z"),
        (None, "int", None),
    ],
)
def test_convert(value, field_type, expected):
    assert convert(value, field_type) == expected


@pytest.mark.parametrize(
    ("value", "field_type"),
    [
        ("x", "int"),
        (7.5, "int"),
        (True, "int"),
        ("maybe", "bool"),
        (2, "bool"),
        (float("nan"), "float"),
        (True, "datetime"),
        ("yesterday", "datetime"),
        (1e300, "datetime"),
    ],
)
def test_convert_refuses(value, field_type):
    with pytest.raises(ValueError, match="cannot convert"):
        convert(value, field_type)
