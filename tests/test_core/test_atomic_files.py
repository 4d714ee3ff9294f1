from __future__ import annotations

import pytest

from streams.atomic_files import atomic_writer, write_atomic


def test_a_finished_block_replaces_the_file_whole(tmp_path):
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with atomic_writer(target) as out:
        out.write(b"new ")
        assert target.read_bytes() == b"old"  # nothing visible before the rename
        out.write(b"content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_an_error_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def crash_mid_write() -> None:
        with atomic_writer(target, ".named.tmp") as out:
            out.write(b"half")
            assert (tmp_path / ".named.tmp").exists()
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash mid-write"):
        crash_mid_write()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_atomic_creates_the_directory(tmp_path):
    target = tmp_path / "a" / "b" / "report.json"
    write_atomic(target, b"{}")
    assert target.read_bytes() == b"{}"
