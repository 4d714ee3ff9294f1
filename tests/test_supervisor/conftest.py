"""``start_supervised(argv, env)``: a supervisor subprocess, killed with its members after the
test if it is still running (a failed assertion must not leave a group behind)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from tests.test_supervisor.supervised import Supervised

StartSupervised = Callable[..., Supervised]


@pytest.fixture
def start_supervised() -> Iterator[StartSupervised]:
    started: list[Supervised] = []

    def start(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Supervised:
        group = Supervised(argv, env)
        started.append(group)
        return group

    yield start
    for group in started:
        group.kill()
