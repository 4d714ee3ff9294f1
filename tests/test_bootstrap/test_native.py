"""The Rust kernel's ``streams._native.csvfast``: built where CI runs, its reading helpers equal
to their Python fallbacks, and its converter failing loudly instead of quietly.

Its events are held to the Python converter's byte for byte in test_frames.py, its duplicate
index to the polars one in test_dedupe.py. (Its eight-bytes-at-a-time helpers have no
byte-at-a-time variant to test apart: they read words little-endian on every machine.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.bootstrap import files
from streams.bootstrap.dedupe import DuplicateIndex
from streams.bootstrap.files import CsvSource
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.native import NativeConverter, available
from streams.bootstrap.sources import Chunk
from tests.test_bootstrap.test_frames import (
    LIMITS,
    MAPPINGS,
    SINCE_MS,
    SNAPSHOT_MS,
    run,
    sweep_lines,
    write,
)

needs_native = pytest.mark.skipif(not available(), reason="streams._native.csvfast is not built")


def test_ci_builds_the_extension() -> None:
    """CI installs the package, Rust kernel and all: a kernel without ``csvfast`` must not pass
    unseen as the slower path."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI requires the build (elsewhere the polars path stands in)")
    assert available(), "streams._native.csvfast did not import: was native/ built?"


LINE = st.lists(st.sampled_from(["a", "bc", "", ";", "é"]), max_size=6).map(",".join)
BLOCK = st.tuples(st.lists(LINE, max_size=12), st.booleans()).map(
    lambda drawn: ("\n".join(drawn[0]) + ("\n" if drawn[1] and drawn[0] else "")).encode()
)


# Lines with what keeps a block from plain reading: quotes, CRs, bytes that are not UTF-8
# (cut short, overlong, a surrogate, past U+10FFFF) next to good multi-byte characters.
ODD_PART = st.sampled_from(["a", "bc", "", ";", "é", '"', "\r", "€", "😀"]).map(
    str.encode
) | st.sampled_from(
    [b"\xff", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
)
ODD_BLOCK = st.lists(st.lists(ODD_PART, max_size=6).map(b",".join), max_size=12).map(b"\n".join)


def python_scan(
    block: bytes, width: int, delimiter: bytes = b","
) -> tuple[int, list[tuple[int, int]]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "_csvfast", None)
        return files._scan_block(block, delimiter, width)


@needs_native
@given(
    block=BLOCK | ODD_BLOCK,
    width=st.integers(1, 4),
    delimiter=st.sampled_from([b",", b";", b"\t", b"a"]),
)
def test_blocks_scanned_in_rust_are_scanned_alike_in_python(
    block: bytes, width: int, delimiter: bytes
) -> None:
    expected = python_scan(block, width, delimiter)
    assert files._scan_block(block, delimiter, width) == expected


@needs_native
@given(st.binary(max_size=40) | ODD_BLOCK)
def test_the_rust_utf8_check_is_strict_decoding(block: bytes) -> None:
    try:
        block.decode()
        valid = True
    except UnicodeDecodeError:
        valid = False
    flags, _ = files._scan_block(block, b",", 2)
    assert not flags & files.NOT_UTF8 if valid else flags & files.NOT_UTF8


@needs_native
@given(block=BLOCK, start=st.integers(0, 15), count=st.integers(0, 15))
def test_line_ends_in_rust_are_line_ends_in_python(block: bytes, start: int, count: int) -> None:
    start = min(start, len(block))
    native = files._line_end(block, start, count)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "_csvfast", None)
        assert files._line_end(block, start, count) == native


@needs_native
@pytest.mark.parametrize("mapping", sorted(MAPPINGS))
def test_the_python_reading_helpers_cut_the_same_blocks(
    mapping: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the extension CsvSource finds lines and widths in Python: same chunks, same
    verdicts."""
    path = write([*sweep_lines(), "", "c-9,short", "", "c-10" + ",x" * 20])
    expected = run(path, MAPPINGS[mapping], 7, fast="native")
    monkeypatch.setattr(files, "_csvfast", None)
    assert run(path, MAPPINGS[mapping], 7, fast="polars") == expected


GOOD = b"c-1,Ada,a@example.com,5,1.5,true,1985-03-02,ACTIVE,1763700000,1763700000\n"


def converter(path: Path, mapping: str = "full", **overrides: Any) -> NativeConverter:
    with CsvSource(path) as source:
        assert source.columns is not None
        return NativeConverter(
            parse_mapping(MAPPINGS[mapping]),
            source.columns,
            job_id="job",
            snapshot_ms=SNAPSHOT_MS,
            since_ms=SINCE_MS if "modified_at_column" in MAPPINGS[mapping] else None,
            limits=LIMITS,
            **overrides,
        )


@needs_native
def test_a_block_and_its_lines_must_agree(tmp_path: Path) -> None:
    native = converter(write(sweep_lines()[:3]))
    with pytest.raises(ValueError, match="fewer lines"):
        native.convert_chunk(Chunk([], [2, 3], [], 3, GOOD))
    with pytest.raises(ValueError, match="more lines"):
        native.convert_chunk(Chunk([], [2], [], 3, GOOD * 2))
    assert len(native.convert_chunk(Chunk([], [2], [], 2, GOOD)).payloads) == 1


@needs_native
def test_line_numbers_as_a_range_or_any_sequence_convert_alike() -> None:
    """Block chunks number their lines with a range, read without making a list of it; any
    other sequence (odd lines taken out) is read item by item: the same events either way."""
    lines = sweep_lines()
    block = ("\n".join(lines) + "\n").encode()
    path = write(lines)
    for numbers in (
        range(7, 7 + len(lines)),
        range(3, 3 + 2 * len(lines), 2),
        range(2**62, 2**62 + len(lines)),
    ):
        ranged = converter(path)._converter.convert(block, numbers)
        assert ranged == converter(path)._converter.convert(block, list(numbers))
        assert len(ranged[0]) > 10
        assert ranged[2][0] == numbers[0]


@needs_native
def test_an_error_while_converting_a_memo_value_surfaces_and_leaves_it_usable(
    tmp_path: Path,
) -> None:
    native = converter(write(sweep_lines()[:3]))
    calls = 0

    def failing(which: int, cells: list[bytes]) -> list[Any]:
        nonlocal calls
        calls += 1
        raise RuntimeError("conversion broke")

    native._converter = type(native._converter)(  # the same spec, a failing miss()
        **{**native._arguments, "miss": failing}
    )
    with pytest.raises(RuntimeError, match="conversion broke"):
        native.convert_chunk(Chunk([], [2], [], 2, GOOD))
    with pytest.raises(RuntimeError, match="conversion broke"):  # not "already running"
        native.convert_chunk(Chunk([], [2], [], 2, GOOD))
    assert calls == 2


@needs_native
@pytest.mark.parametrize("memo_limit", [1, 2, 5])
def test_memos_that_start_over_change_nothing(memo_limit: int) -> None:
    path = write(sweep_lines())
    expected = run(path, MAPPINGS["full"], 13, fast=None)
    small = converter(path, memo_limit=memo_limit)
    with CsvSource(path) as source:
        source.blocks = True
        events: list[tuple[int, bytes, float | None, bytes]] = []
        for chunk in source.chunks(13):
            out = small.convert_chunk(chunk)
            stamps: list[float | None] = [*out.stamps] if out.stamps else [None] * len(out.lines)
            events += zip(out.lines, out.keys, stamps, out.payloads, strict=True)
    assert sorted(events) == expected["events"]


def quoting_converter(learnt: list[bytes] | None = None) -> NativeConverter:
    """A converter whose memo columns write each cell, twice, as a JSON string (and note the
    cells they learn in ``learnt``)."""
    native = converter(write(sweep_lines()[:3]))
    original = native._arguments["miss"]

    def quoting(which: int, cells: list[bytes]) -> list[Any]:
        if which < 0:  # removal flags and modified-at times as usual
            return original(which, cells)  # type: ignore[no-any-return]
        if learnt is not None:
            learnt.extend(cells)
        return [b'"' + cell * 2 + b'"' for cell in cells]

    native._converter = type(native._converter)(**{**native._arguments, "miss": quoting})
    return native


def assert_memo_texts(native: NativeConverter, cells: list[bytes]) -> None:
    block = b"".join(
        b"c-%d,Ada,a@example.com,5,1.5,%s,1985-03-02,ACTIVE,1763700000,1763700000\n" % (i, cell)
        for i, cell in enumerate(cells)
    )
    lines = list(range(2, len(cells) + 2))
    out = native.convert_chunk(Chunk([], lines, [], lines[-1], block))
    assert len(out.payloads) == len(cells)
    for cell, payload in zip(cells, out.payloads, strict=True):
        assert b'"' + cell * 2 + b'"' in payload
        for other in {cells[0], cells[-1]} - {cell}:
            assert b'"' + other * 2 + b'"' not in payload


@needs_native
def test_memo_cells_and_texts_longer_than_a_slot_holds_are_kept_whole() -> None:
    """A memo slot keeps 26 bytes of a cell and of its text inline: longer ones (here cells
    alike in their first 26 bytes) are compared and written whole."""
    cells = [b"A" * 26 + b"-one", b"B", b"A" * 26 + b"-two", b"A" * 26 + b"-one"]
    assert_memo_texts(quoting_converter(), cells)


@needs_native
def test_memo_tables_that_grow_keep_every_value() -> None:
    """Thousands of distinct cells: the table grows (and moves its slots) several times."""
    learnt: list[bytes] = []
    native = quoting_converter(learnt)
    cells = [b"v%d" % (i * 7919 % 3000) for i in range(3000)]
    assert_memo_texts(native, cells)
    ours = [cell for cell in learnt if cell.startswith(b"v")]  # (the date column is one too)
    assert sorted(ours) == sorted(cells)  # each learnt once
    assert_memo_texts(native, cells[::-1])
    assert [cell for cell in learnt if cell.startswith(b"v")] == ours  # all found again


@needs_native
def test_a_converter_busy_with_a_chunk_refuses_a_second_call() -> None:
    """miss() runs Python in the middle of a chunk: a call back into the same converter, or
    into the duplicate index it fills, is refused (their state is in use), and both stay
    usable."""
    index = DuplicateIndex(lambda *_: None).native
    native = converter(write(sweep_lines()[:3]), index=index)
    original = native._arguments["miss"]
    refused = 0

    def reentrant(which: int, cells: list[bytes]) -> list[Any]:
        nonlocal refused
        with pytest.raises(RuntimeError):
            native._converter.convert(GOOD, [2])
        with pytest.raises(RuntimeError):
            index.add([b"c-1"], [2], None)
        refused += 1
        return original(which, cells)  # type: ignore[no-any-return]

    native._converter = type(native._converter)(**{**native._arguments, "miss": reentrant})
    assert len(native.convert_chunk(Chunk([], [2], [], 2, GOOD)).payloads) == 1
    assert refused
    assert len(native.convert_chunk(Chunk([], [3], [], 3, GOOD)).payloads) == 1  # memos known
    index.add([b"c-1"], [4], [1763700000.0])  # the same update time, a later line: it wins
    assert index.losses() == [(2, 4, True), (3, 4, True)]
