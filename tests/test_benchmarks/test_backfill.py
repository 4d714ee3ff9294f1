"""The end-to-end backfill benchmark: a small run through Kafka and PostgreSQL measures every
stage and verifies both tables, and its check catches a table that differs from the merge."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from benchmarks.backfill import END_TO_END, RAW_COPY, STAGES, report, run
from benchmarks.backfill_state import Expected, digest, mismatches


def test_a_small_backfill_is_measured_and_both_tables_equal_the_merge(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path: Path
) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    outcome = run(
        2_000,
        bootstrap=kafka_bootstrap,
        dsn=postgres_dsn,
        work_dir=tmp_path,
        console=console,
        repeat=2,
    )
    assert set(outcome.measures) == {*STAGES, END_TO_END, RAW_COPY}
    assert all(measure.seconds > 0 for measure in outcome.measures.values())
    # Duplicate ids and rejected bad emails: fewer final rows than CSV rows, but most of them.
    assert 1_900 < outcome.measures[RAW_COPY].records < 2_000
    verified = [check for check in outcome.checks if "equal to the merge" in check]
    assert len(verified) == 2  # the sink-alone table and the end-to-end one
    report(outcome, console)
    printed = out.getvalue()
    assert "slowest stage alone:" in printed
    assert printed.count("target: ") == 2
    assert "end-to-end timeline" in printed
    assert "best of 2" in printed
    assert printed.count("turn 2 of 2") == 3  # the processor alone, the sink alone, the COPY


def test_the_check_names_rows_that_differ_from_the_merge_and_missing_customers() -> None:
    expected = Expected(
        digests={
            "c-1": digest({"city": "Brno", "age": 30}, None),
            "c-2": digest({"city": "Praha"}, None),
            "c-3": digest({}, 1_700_000_000_000),
        }
    )
    right = [
        ("c-1", '{"age": 30, "city": "Brno"}', None),
        ("c-2", '{"city": "Praha"}', None),
        ("c-3", "{}", 1_700_000_000_000),
    ]
    assert mismatches(expected, right) == []
    wrong = [("c-1", '{"age": 31, "city": "Brno"}', None), right[2]]
    problems = mismatches(expected, wrong)
    assert problems == [
        "2 rows, the merge implies 3",
        "1 rows differ from the merge, e.g. ['c-1']",
        "1 customers missing, e.g. ['c-2']",
    ]
    # The delete watermark counts as much as the values.
    assert mismatches(expected, [*right[:2], ("c-3", "{}", None)]) != []
