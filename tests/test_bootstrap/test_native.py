"""The native converter's own machinery: chunks cut anywhere in the bytes, memo tables, and
failures that surface instead of passing quietly. (Its events are held to the Python
reference in test_native_rows.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.bootstrap import native as native_module
from streams.bootstrap.dedupe import DuplicateIndex
from streams.bootstrap.files import CsvSource
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.native import NativeConverter
from streams.bootstrap.rows import ChunkOutput
from tests.test_bootstrap.test_native_rows import (
    HEADER,
    LIMITS,
    MAPPINGS,
    SNAPSHOT_MS,
    reference,
    run,
    sweep_rows,
    write,
)

GOOD = "c-{n},Ada,a@example.com,5,1.5,{flag},1985-03-02,ACTIVE,1763700000,1763700000"
Miss = Callable[[int, list[bytes]], list[Any]]


def convert(
    rows: list[str],
    *,
    size: int = 1000,
    miss: Callable[[Miss], Miss] | None = None,
    index: Any = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> list[ChunkOutput]:
    """The outputs of a converter of the "plain" mapping whose miss() ``miss`` wraps."""
    if miss is not None:
        assert monkeypatch is not None
        original = native_module._miss_function
        monkeypatch.setattr(native_module, "_miss_function", lambda *args: miss(original(*args)))
    with CsvSource(write(rows)) as source:
        converter = NativeConverter(
            parse_mapping(MAPPINGS["plain"]),
            source,
            job_id="job",
            snapshot_ms=SNAPSHOT_MS,
            since_ms=None,
            limits=LIMITS,
            index=index,
        )
        return [out for _, out in converter.chunks(size)]


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 22])
def test_blocks_cut_anywhere_make_the_same_rows(
    block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record cut by the end of a block is parsed again, whole, once the next block came: the
    same rows and lines, however the file is read."""
    first = 'c-1,"two\r\nlines",a@example.com,5,1.5,true,1985-03-02,ACTIVE,1763700000,1'
    lines: list[str | list[str]] = [first, *sweep_rows()]
    path = write(lines, lineterminator="\r\n")
    expected = reference(path, MAPPINGS["full"])
    monkeypatch.setattr("streams.bootstrap.files.READ_BYTES", block_bytes)
    assert run(path, MAPPINGS["full"], 5) == expected


def test_a_file_of_a_header_and_blank_lines_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(",".join(HEADER) + "\n\n\r\n\n")
    assert run(path, MAPPINGS["plain"], 10)["rows"] == 0


def quoting(learnt: list[bytes]) -> Callable[[Miss], Miss]:
    """miss() whose memo columns write each cell, twice, as a JSON string (and note the cells
    they learn in ``learnt``)."""

    def wrap(original: Miss) -> Miss:
        def miss(which: int, cells: list[bytes]) -> list[Any]:
            if which < 0:  # removal flags and modified-at times as usual
                return original(which, cells)
            learnt.extend(cells)
            return [b'"' + cell * 2 + b'"' for cell in cells]

        return miss

    return wrap


def assert_memo_texts(outs: list[ChunkOutput], cells: list[bytes]) -> None:
    payloads = [payload for out in outs for payload in out.payloads]
    assert len(payloads) == len(cells)
    for cell, payload in zip(cells, payloads, strict=True):
        assert b'"flag":"' + cell * 2 + b'"' in payload


def test_memo_cells_and_texts_longer_than_a_slot_holds_are_kept_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A memo slot keeps 26 bytes of a cell and of its text inline: longer ones (here cells
    alike in their first 26 bytes) are compared and written whole."""
    cells = [b"A" * 26 + b"-one", b"B", b"A" * 26 + b"-two", b"A" * 26 + b"-one"]
    rows = [GOOD.format(n=n, flag=cell.decode()) for n, cell in enumerate(cells)]
    assert_memo_texts(convert(rows, miss=quoting([]), monkeypatch=monkeypatch), cells)


def test_memo_tables_that_grow_keep_every_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of distinct cells: the table grows (and moves its slots) several times, and
    each cell is learnt once."""
    learnt: list[bytes] = []
    cells = [b"v%d" % (i * 7919 % 3000) for i in range(3000)]
    cells += cells[::-1]
    rows = [GOOD.format(n=n, flag=cell.decode()) for n, cell in enumerate(cells)]
    assert_memo_texts(
        convert(rows, size=3000, miss=quoting(learnt), monkeypatch=monkeypatch), cells
    )
    ours = [cell for cell in learnt if cell.startswith(b"v")]  # (the date column is one too)
    assert sorted(ours) == sorted(set(cells))


def test_an_error_while_converting_a_memo_value_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(original: Miss) -> Miss:
        def miss(which: int, cells: list[bytes]) -> list[Any]:
            raise RuntimeError("conversion broke")

        return miss

    with pytest.raises(RuntimeError, match="conversion broke"):
        convert([GOOD.format(n=1, flag="true")], miss=failing, monkeypatch=monkeypatch)


def test_a_converter_busy_with_a_chunk_refuses_a_second_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """miss() runs Python in the middle of a chunk: a call into the duplicate index the
    converter fills is refused (its state is in use), and it stays usable."""
    index = DuplicateIndex(lambda *_: None).native
    refused = 0

    def reentrant(original: Miss) -> Miss:
        def miss(which: int, cells: list[bytes]) -> list[Any]:
            nonlocal refused
            with pytest.raises(RuntimeError):
                index.add([b"c-1"], [2], None)
            refused += 1
            return original(which, cells)

        return miss

    rows = [GOOD.format(n=1, flag="true"), GOOD.format(n=1, flag="true")]
    outs = convert(rows, index=index, miss=reentrant, monkeypatch=monkeypatch)
    assert sum(len(out.payloads) for out in outs) == 2
    assert refused
    index.add([b"c-1"], [4], [1763700000.0])
    assert index.losses() == [(2, 4, True), (3, 4, True)]
