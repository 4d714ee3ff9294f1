"""Prefetch: items arrive in order, errors arrive where they happened, leaving stops the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.bootstrap.prefetch import Prefetch


@given(st.lists(st.integers()), st.integers(1, 4))
def test_items_arrive_in_order(items: list[int], depth: int) -> None:
    with Prefetch(iter(items), depth) as ahead:
        assert list(ahead) == items


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_an_error_is_raised_after_the_items_before_it(error: BaseException) -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise error

    seen: list[int] = []
    with pytest.raises(type(error)), Prefetch(items()) as ahead:
        seen.extend(ahead)
    assert seen == [1, 2]


def test_leaving_early_stops_the_thread_and_reads_no_further() -> None:
    produced: list[int] = []
    started = threading.active_count()

    def items() -> Iterator[int]:
        for number in range(1_000):
            produced.append(number)
            yield number

    with Prefetch(items(), depth=2) as ahead:
        for number in ahead:
            if number == 3:
                break
    assert threading.active_count() == started
    assert len(produced) <= 3 + 1 + 2 + 1  # what was taken, the queue, one in hand


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        Prefetch(iter([]), 0)
