"""Interpreter settings of a running bootstrap: set while any job runs, restored after the last."""

from __future__ import annotations

import gc
import sys

import pytest

from streams.bootstrap.interpreter import GIL_SWITCH_SECONDS, bootstrap_settings


@pytest.mark.parametrize("collecting", [True, False])
def test_overlapping_jobs_restore_the_settings_when_the_last_one_ends(collecting: bool) -> None:
    before = sys.getswitchinterval()
    was_enabled = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        first, second = bootstrap_settings(), bootstrap_settings()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first job ends while the second still runs
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
        assert not gc.isenabled()
        second.__exit__(None, None, None)
        assert sys.getswitchinterval() == before
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was_enabled else gc.disable)()


def test_settings_are_restored_when_the_job_fails() -> None:
    before = sys.getswitchinterval()
    during: list[float] = []

    def failing_job() -> None:
        with bootstrap_settings():
            during.append(sys.getswitchinterval())
            raise RuntimeError("the job broke")

    with pytest.raises(RuntimeError):
        failing_job()
    assert during == [pytest.approx(GIL_SWITCH_SECONDS)]
    assert sys.getswitchinterval() == before
