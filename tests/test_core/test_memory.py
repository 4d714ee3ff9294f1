"""The worker gives freed heap pages back when idle after work, not all the time."""

from __future__ import annotations

import platform

import pytest

from streams import memory


def test_idle_trims_once_after_work_and_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    trims: list[float] = []
    monkeypatch.setattr("streams.memory.time.monotonic", lambda: now[0])
    monkeypatch.setattr(memory, "release_free_memory", lambda: trims.append(now[0]))
    idle = memory.IdleTrim(interval=10.0)

    idle.idle()
    assert trims == [], "nothing was done: nothing to give back"
    idle.busy()
    idle.idle()
    idle.idle()
    assert trims == [100.0]
    idle.busy()
    now[0] = 105.0
    idle.idle()
    assert trims == [100.0], "within the interval"
    now[0] = 110.0
    idle.idle()
    assert trims == [100.0, 110.0]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_malloc_trim_is_found() -> None:
    assert memory._malloc_trim is not None
    memory.release_free_memory()
