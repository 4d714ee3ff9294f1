"""Duplicate ids: whatever the chunking, every row but the newest per id is reported once."""

from __future__ import annotations

import threading
from itertools import pairwise
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from streams.bootstrap.dedupe import DuplicateIndex

ROWS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3)), min_size=1, max_size=40
)


def run(
    rows: list[tuple[str, int]],
    cuts: list[int],
    stamped: bool,
    shuffle: Random | None = None,
) -> list[tuple[int, int, bool]]:
    reports: list[tuple[int, int, bool]] = []
    index = DuplicateIndex(lambda line, kept, same: reports.append((line, kept, same)))
    bounds = sorted({0, len(rows), *(cut % (len(rows) + 1) for cut in cuts)})
    for start, end in pairwise(bounds):
        # Within a chunk rows may come in any order (the converter puts some last).
        order = list(range(start, end))
        if shuffle is not None:
            shuffle.shuffle(order)
        stamps = [float(rows[i][1]) for i in order] if stamped else None
        index.add([rows[i][0].encode() for i in order], stamps, [i + 1 for i in order])
    index.finish()
    return reports


@given(ROWS, st.lists(st.integers(0, 40), max_size=5), st.booleans(), st.randoms())
def test_losers_are_every_row_but_the_winner(
    rows: list[tuple[str, int]], cuts: list[int], stamped: bool, shuffle: Random
) -> None:
    """Whatever the chunking and the order of rows within a chunk."""
    reports = run(rows, cuts, stamped, shuffle)
    # The winner per id: the newest update time, then the later line.
    winners: dict[str, tuple[tuple[int, int], int]] = {}
    for line, (key, stamp) in enumerate(rows, 1):
        rank = (stamp if stamped else 0, line)
        if key not in winners or rank > winners[key][0]:
            winners[key] = (rank, line)
    winning_lines = {line for _, line in winners.values()}
    losers = [line for line, _, _ in reports]
    assert sorted(losers) == sorted(set(range(1, len(rows) + 1)) - winning_lines)
    for line, kept, same in reports:
        assert rows[line - 1][0] == rows[kept - 1][0]
        assert same == (not stamped or rows[line - 1][1] == rows[kept - 1][1])


@given(ROWS, st.lists(st.integers(0, 40), max_size=5), st.booleans())
def test_chunking_does_not_change_the_verdicts(
    rows: list[tuple[str, int]], cuts: list[int], stamped: bool
) -> None:
    whole = run(rows, [], stamped)
    assert sorted(run(rows, cuts, stamped)) == sorted(whole)


def test_reports_come_from_finish_only_by_line() -> None:
    """The bootstrap adds rows on its reader thread and finishes on the main one: nothing may
    be reported before finish(), and each loser is reported against its id's final winner."""
    reports: list[tuple[int, int, bool]] = []
    index = DuplicateIndex(lambda line, kept, same: reports.append((line, kept, same)))

    def add_all() -> None:
        for start in range(0, 12, 3):
            lines = list(range(start + 1, start + 4))
            index.add([b"a" if line % 2 else b"b" for line in lines], None, lines)

    reader = threading.Thread(target=add_all)
    reader.start()
    reader.join()
    assert reports == []
    index.finish()
    # Odd lines share "a" (11 wins), even lines "b" (12 wins).
    assert reports == [(line, 11 if line % 2 else 12, True) for line in range(1, 11)]


def test_the_rust_index_keeps_every_id_while_its_table_grows() -> None:
    """Tens of thousands of ids (the table grows and moves its slots many times), some of them
    seen again at the end: each repeat is found, none invented."""
    ids = [f"c-{n:08d}".encode() for n in range(40_000)]
    repeats = ids[::7]
    rows = [(key.decode(), 0) for key in ids + repeats]
    reports = run(rows, [len(ids)], stamped=False)
    assert sorted(line for line, _, _ in reports) == [n * 7 + 1 for n in range(len(repeats))]
    assert all(kept == len(ids) + (line - 1) // 7 + 1 for line, kept, _ in reports)
