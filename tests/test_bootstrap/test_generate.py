"""The synthetic snapshot generator and its mapping."""

from __future__ import annotations

import csv
from pathlib import Path

from streams.bootstrap.files import CsvSource
from streams.bootstrap.generate import main
from streams.bootstrap.mapping import load_mapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.rows import RowLimits


def test_generated_snapshots_convert_with_their_mapping(tmp_path: Path) -> None:
    out = tmp_path / "snap.csv"
    args = ["--rows", "2000", "--out", str(out), "--duplicates", "0.05", "--bad-emails", "0.01"]
    assert main([*args, "--removals", "0.02", "--update-timestamps"]) == 0
    mapping = load_mapping(tmp_path / "snap.mapping.json")
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 2001
    ids = [row[0] for row in rows[1:]]
    assert 1800 < len(set(ids)) < 2000
    with CsvSource(out) as source:
        converter = NativeConverter(
            mapping,
            source,
            job_id="g",
            snapshot_ms=0,
            since_ms=None,
            limits=RowLimits(2**50, 1 << 20),
        )
        outputs = [output for _, output in converter.chunks(500)]
    rejected = {reason for o in outputs for _, reason, _ in o.rejected}
    assert rejected == {"bad_email"}
    assert 0 < sum(o.opt_outs for o in outputs) < 100
    assert sum(len(o.payloads) for o in outputs) == 2000 - sum(len(o.rejected) for o in outputs)


def test_the_same_seed_writes_the_same_file(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        main(["--rows", "50", "--out", str(tmp_path / name), "--seed", "7"])
    first = (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()[1:]
    second = (tmp_path / "b.csv").read_text(encoding="utf-8").splitlines()[1:]
    # modified_at follows the clock; everything before it is seeded.
    assert [line.rsplit(",", 1)[0] for line in first] == [line.rsplit(",", 1)[0] for line in second]
