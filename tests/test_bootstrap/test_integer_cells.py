"""The snapshot bootstrap keeps the one rule for integers: a cell read as an integer (an int
column, an update time, an id) outside [-2^63, 2^63 - 1] rejects its row with the reason
``integer_out_of_range``, on both converters (the Python reference, the native one) and from
CSV and JSONL alike."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from streams.bootstrap.convert import ConversionError, epoch_ms, to_customer_id, to_int
from streams.codecs.integers import I64_MAX, I64_MIN
from tests.test_bootstrap.test_native_rows import MAPPINGS, reference, run, write
from tests.test_codecs.test_integers import BOUNDARY, INTEGERS


def verdict(convert: Any, value: object) -> object:
    try:
        return convert(value)
    except ConversionError as exc:
        return exc.reason


@given(value=INTEGERS)
def test_an_int_cell_out_of_range_is_refused_as_such(value: int) -> None:
    for cell in (value, str(value), f" {value} "):
        got = verdict(to_int, cell)
        assert got == (value if I64_MIN <= value <= I64_MAX else "integer_out_of_range")


@pytest.mark.parametrize("cell", ["1e30", 1e30, float(2**63), "9" * 5000])
def test_an_int_cell_beyond_the_range_in_any_spelling_is_refused(cell: object) -> None:
    assert verdict(to_int, cell) == "integer_out_of_range"


@given(value=INTEGERS)
def test_update_times_and_ids_keep_the_rule(value: int) -> None:
    in_range = I64_MIN <= value <= I64_MAX
    for cell in (value, str(value)):
        got = verdict(lambda v: epoch_ms(v, UTC), cell)
        if in_range:
            assert got != "integer_out_of_range"
        else:
            assert got == "integer_out_of_range"
    assert verdict(to_customer_id, value) == (str(value) if in_range else "integer_out_of_range")


def test_every_converter_rejects_a_csv_cell_out_of_range_alike() -> None:
    good = "c-0,Ada,ada@example.com,41,1.5,true,1985-03-02,,2025-11-21T00:00:00Z,1763700000"
    lines = [good]
    for number, value in enumerate([*BOUNDARY, 10**24 + 7], start=1):  # a 25-digit cell too
        fields = good.split(",")
        fields[0], fields[3] = f"c-{number}", str(value)
        lines.append(",".join(fields))
        fields[3], fields[9] = "41", str(value)  # as an update time
        fields[0] = f"t-{number}"
        lines.append(",".join(fields))
    path = write(lines)
    expected = reference(path, MAPPINGS["full"])
    reasons = {line: reason for line, reason, _ in expected["rejected"]}
    for line, text in enumerate(lines, start=2):
        column = 3 if text.split(",")[3] != "41" else 9
        value = int(text.split(",")[column])
        if I64_MIN <= value <= I64_MAX:
            assert reasons.get(line) != "integer_out_of_range", text
        else:
            assert reasons[line] == "integer_out_of_range", text
    assert run(path, MAPPINGS["full"], 4) == expected


def test_a_jsonl_integer_out_of_range_is_refused_even_where_orjson_rounds_it(
    tmp_path: Path,
) -> None:
    """orjson reads -2^63-1 as the float -2^63: read exactly, it is refused."""
    values = [I64_MIN - 1, I64_MIN, I64_MAX, I64_MAX + 1, 2**64, 10**30]
    rows = [f'{{"id":"c-{n}","age":{value},"name":"x{value}"}}' for n, value in enumerate(values)]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    mapping = {
        "ids": [{"from_column": "id"}],
        "properties": [
            {"from_column": "age", "to_property": "age", "type": "int"},
            {"from_column": "name", "to_property": "name", "type": "string"},
        ],
    }
    expected = reference(path, mapping)
    assert run(path, mapping, 100) == expected
    rejected = {line: reason for line, reason, _ in expected["rejected"]}
    assert rejected == {1: "integer_out_of_range", 4: "integer_out_of_range"} | {
        5: "integer_out_of_range",
        6: "integer_out_of_range",
    }
    assert [line for line, *_ in expected["events"]] == [2, 3]
