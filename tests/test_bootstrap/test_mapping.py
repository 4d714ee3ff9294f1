"""The mapping file: Bloomreach's model, our additions, and clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from streams.bootstrap.convert import epoch_ms
from streams.bootstrap.generate import sample_mapping
from streams.bootstrap.mapping import load_mapping, parse_mapping
from streams.errors import ConfigError

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

BLOOMREACH = {
    "properties": [{"from_column": "meno", "to_property": "first_name", "type": "string"}],
    "update_timestamp": {"from_column": "update_timestamp"},
    "ids": [{"from_column": "idecko", "to_id": "registered"}],
    "constant_columns": [],
    "timezone": "UTC",
}


def test_bloomreachs_mapping_model_is_accepted_as_written() -> None:
    mapping = parse_mapping(BLOOMREACH)
    assert mapping.id_column == "idecko"
    assert mapping.update_timestamp is not None
    assert mapping.update_timestamp.from_column == "update_timestamp"
    assert mapping.source == "bootstrap"
    assert mapping.columns() == ["idecko", "meno", "update_timestamp"]


def test_a_single_id_object_is_accepted_too() -> None:
    mapping = parse_mapping({**BLOOMREACH, "ids": {"from_column": "idecko", "to_id": "registered"}})
    assert mapping.id_column == "idecko"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"ids": []}, "ids"),
        ({"ids": [{"from_column": "a"}, {"from_column": "b"}]}, "ids"),
        ({"properties": [{"from_column": "x", "to_property": "y", "type": "decimal"}]}, "type"),
        ({"propreties": []}, "propreties"),
        (
            {
                "properties": [
                    {"from_column": "a", "to_property": "city"},
                    {"from_column": "b", "to_property": "city"},
                ]
            },
            "mapped more than once: city",
        ),
        (
            {"constant_columns": [{"to_property": "first_name", "value": "x"}]},
            "mapped more than once: first_name",
        ),
        ({"properties": []}, "at least one property"),
        ({"removal": {"column": "status", "values": []}}, "removal.values"),
    ],
)
def test_invalid_mappings_name_the_problem(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_mapping({**BLOOMREACH, **change})


def test_removal_reads_the_as_key() -> None:
    removal = {"column": "status", "values": ["OPT_OUT"], "as": "property"}
    mapping = parse_mapping({**BLOOMREACH, "removal": removal})
    assert mapping.removal is not None
    assert mapping.removal.as_ == "property"
    assert mapping.removal.property == "email_status"
    assert mapping.property_count() == 2
    assert "status" in mapping.columns()


def test_the_fingerprint_follows_every_setting() -> None:
    base = parse_mapping(BLOOMREACH)
    assert base.fingerprint() == parse_mapping(dict(BLOOMREACH)).fingerprint()
    assert (
        base.fingerprint()
        != parse_mapping({**BLOOMREACH, "timezone": "Europe/Prague"}).fingerprint()
    )


def test_load_mapping_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_mapping(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not JSON"):
        load_mapping(broken)


def test_the_sample_mapping_fits_the_sample_snapshot() -> None:
    mapping = load_mapping(SAMPLES / "bootstrap_mapping.json")
    assert orjson.loads((SAMPLES / "bootstrap_mapping.json").read_bytes()) == sample_mapping(
        update_timestamps=True
    )
    with (SAMPLES / "customers_snapshot.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert set(mapping.columns()) <= set(header)


def test_the_sample_snapshot_is_older_than_every_dated_live_event() -> None:
    """The product's story in the samples: a snapshot read before the live updates, so its
    writes never replace theirs (``make run`` shows it on c-1002's city)."""
    mapping = load_mapping(SAMPLES / "bootstrap_mapping.json")
    assert mapping.update_timestamp is not None
    with (SAMPLES / "customers_snapshot.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    snapshot = [epoch_ms(row[mapping.update_timestamp.from_column], mapping.tz) for row in rows]
    live = []
    for line in (SAMPLES / "profile_changes.jsonl").read_bytes().splitlines():
        try:
            stamp = orjson.loads(line).get("update_timestamp")
        except (orjson.JSONDecodeError, AttributeError):
            continue  # the sample's malformed lines
        if isinstance(stamp, str) or (isinstance(stamp, int | float) and stamp > 0):
            live.append(epoch_ms(stamp, mapping.tz))
    assert len(snapshot) == 8
    assert len(live) > 80
    assert max(snapshot) < min(live)
    cities = {row["idecko"]: row["mesto"] for row in rows}
    assert cities["c-1002"] == "Bratislava"  # what the web's fresher "Praha" keeps out
