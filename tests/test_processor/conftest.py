"""Fixtures for processor tests: an in-process worker (HTTP API included) on fresh topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from streams.processor.runner import WorkerService
from streams.settings import Settings

ASSIGN_TIMEOUT = 60.0


@pytest.fixture
def start_worker() -> Iterator[Callable[[Settings], WorkerService]]:
    started: list[WorkerService] = []

    def start(settings: Settings) -> WorkerService:
        service = WorkerService(settings)
        service.start()
        started.append(service)
        assert service.worker is not None
        assert service.worker.wait_assigned(ASSIGN_TIMEOUT), "worker got no partitions"
        return service

    yield start
    for service in started:
        service.stop()
